package local

import (
	"strings"
	"testing"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// $KAMAJI_LOCAL_PROFILE gives every sample TCP its profile; without it they carry none.
func TestSampleTCPProfile(t *testing.T) {
	t.Setenv(ProfileEnv, "")
	if a := SampleTCP("t", "default").Annotations; len(a) != 0 {
		t.Errorf("annotations without a profile: %v", a)
	}
	t.Setenv(ProfileEnv, "lean")
	if got := SampleTCP("t", "default").Annotations[kamajiv1alpha1.ControlPlaneProfileAnnotation]; got != "lean" {
		t.Errorf("profile annotation = %q, want lean", got)
	}
}

// `kamaji local up` refuses an unknown profile before it starts anything, naming the variable.
func TestUnknownLocalProfile(t *testing.T) {
	t.Setenv(ProfileEnv, "tiny")
	cfg := DefaultConfig()
	cfg.StateDir = t.TempDir()
	err := cfg.normalize()
	if err == nil || !strings.Contains(err.Error(), "$KAMAJI_LOCAL_PROFILE") || !strings.Contains(err.Error(), `"tiny" is not a profile`) {
		t.Fatalf("normalize with %s=tiny: %v", ProfileEnv, err)
	}
}
