package kubeversion

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct{ from, to, wantErr string }{
		// Creation: no lower bound, the newest known minor as the upper one.
		{"", "v1.37.2", ""},
		{"", "1.35.0", ""},
		{"", "v1.30.0", ""},
		{"", "v1.28.15", ""},
		{"", "v1.23.0", ""},
		{"", "v1.38.0", "newer than v1.37"},
		{"", "v2.0.0", "newer than v1.37"},
		{"", "v0.9.0", "Kubernetes 1.x"},
		{"", "latest", "semantic version"},
		{"", "", "semantic version"},
		// Upgrades: one minor at a time, patches free.
		{"v1.36.1", "v1.37.2", ""},
		{"v1.36.1", "v1.36.1", ""},
		{"v1.29.4", "v1.30.0", ""},
		{"v1.35.0", "v1.37.2", "one minor version at a time (next: v1.36)"},
		// Downgrades: the minor never goes down, the patch may (Kamaji's way back from a bad patch).
		{"v1.35.4", "v1.35.0", ""},
		{"v1.37.2", "v1.36.4", "downgrading from v1.37.2 to v1.36"},
		{"v1.36.0", "v1.35.9", "downgrading"},
		// An installed version this policy cannot read does not block.
		{"garbage", "v1.33.0", ""},
	} {
		err := Check(tc.from, tc.to)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q -> %q: unexpected error %v", tc.from, tc.to, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q -> %q: got %v, want an error containing %q", tc.from, tc.to, err, tc.wantErr)
		}
	}
}

func TestWindowAndWarning(t *testing.T) {
	if Window() != "v1.30 to v1.37" {
		t.Errorf("window %q", Window())
	}
	for v, tested := range map[string]bool{"v1.30.0": true, "v1.34.2": true, "v1.37.9": true, "v1.29.9": false, "v1.23.0": false, "garbage": false} {
		if Tested(v) != tested {
			t.Errorf("Tested(%s) = %v", v, !tested)
		}
	}
	if w := Warning("v1.28.3"); !strings.Contains(w, "v1.28.3 is older than the versions this release is tested with (v1.30 to v1.37)") || !strings.Contains(w, "of v1.30") {
		t.Errorf("warning %q", w)
	}
	for _, v := range []string{"v1.30.0", "v1.34.1", "v1.37.2", "garbage"} {
		if w := Warning(v); w != "" {
			t.Errorf("no warning expected for %s: %q", v, w)
		}
	}
	if m, ok := Minor("1.33.4"); !ok || m != 33 {
		t.Errorf("Minor(1.33.4) = %d %v", m, ok)
	}
	if _, ok := Minor("v2.1.0"); ok {
		t.Error("v2 is not a Kubernetes 1.x minor")
	}
}
