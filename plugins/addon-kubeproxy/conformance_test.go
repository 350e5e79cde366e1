package addonkubeproxy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/openhcp/kamaji/plugins/addon-kubeproxy/kubeproxy"
	"github.com/openhcp/kamaji/sdk/conformance"
)

var required = map[string][]string{"kube-proxy": {"kubernetesVersion", "controlPlaneEndpoint.host", "controlPlaneEndpoint.port"}}

// TestConformance runs the SDK's addon conformance kit against the plugin binary, built here:
// the same path the core takes.
func TestConformance(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kamaji-addon-kubeproxy")
	build := exec.Command("go", "build", "-o", bin, "./cmd/kamaji-addon-kubeproxy")
	build.Env = append(os.Environ(), "GOFLAGS="+os.Getenv("GOFLAGS")+" -buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	conformance.RunAddon(t, conformance.AddonConfig{PluginPath: bin, RequiredTenantFields: required})
}

// TestConformanceInProcess runs the same checks on the renderer without the transport, in
// every proxy mode.
func TestConformanceInProcess(t *testing.T) {
	for _, mode := range kubeproxy.Modes {
		t.Run(mode, func(t *testing.T) {
			conformance.RunAddon(t, conformance.AddonConfig{
				Plugin:               kubeproxy.Plugin{},
				Params:               map[string]map[string]any{"kube-proxy": {"mode": mode}},
				RequiredTenantFields: required,
			})
		})
	}
}
