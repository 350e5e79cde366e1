package addonkonnectivity_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/openhcp/kamaji/plugins/addon-konnectivity/konnectivity"
	"github.com/openhcp/kamaji/sdk/conformance"
)

var required = map[string][]string{"konnectivity": {"name", "controlPlaneEndpoint.host"}}

// TestConformance runs the SDK's addon conformance kit against the plugin binary, built here:
// the same path the core takes.
func TestConformance(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kamaji-addon-konnectivity")
	build := exec.Command("go", "build", "-o", bin, "./cmd/kamaji-addon-konnectivity")
	build.Env = append(os.Environ(), "GOFLAGS="+os.Getenv("GOFLAGS")+" -buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	conformance.RunAddon(t, conformance.AddonConfig{PluginPath: bin, RequiredTenantFields: required})
}

// TestConformanceInProcess runs the same checks on the renderer without the transport, with the
// agent in both modes.
func TestConformanceInProcess(t *testing.T) {
	for name, params := range map[string]map[string]any{
		"daemonset":  {"agent": map[string]any{"mode": "DaemonSet", "hostNetwork": true}},
		"deployment": {"agent": map[string]any{"mode": "Deployment", "replicas": 2.0}, "server": map[string]any{"port": 31132.0}},
	} {
		t.Run(name, func(t *testing.T) {
			conformance.RunAddon(t, conformance.AddonConfig{
				Plugin:               konnectivity.Plugin{},
				Params:               map[string]map[string]any{"konnectivity": params},
				RequiredTenantFields: required,
			})
		})
	}
}
