package addoncoredns_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/openhcp/kamaji/plugins/addon-coredns/coredns"
	"github.com/openhcp/kamaji/sdk/conformance"
)

var required = map[string][]string{"coredns": {"kubernetesVersion", "clusterDomain", "dnsServiceIps"}}

// TestConformance runs the SDK's addon conformance kit against the plugin binary, built here:
// the same path the core takes.
func TestConformance(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kamaji-addon-coredns")
	build := exec.Command("go", "build", "-o", bin, "./cmd/kamaji-addon-coredns")
	build.Env = append(os.Environ(), "GOFLAGS="+os.Getenv("GOFLAGS")+" -buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	conformance.RunAddon(t, conformance.AddonConfig{PluginPath: bin, RequiredTenantFields: required})
}

// TestConformanceInProcess runs the same checks on the renderer without the transport, for
// every supported Kubernetes minor.
func TestConformanceInProcess(t *testing.T) {
	for _, v := range []string{"v1.35.4", "v1.36.3", "v1.37.2"} {
		t.Run(v, func(t *testing.T) {
			cfg := conformance.AddonConfig{Plugin: coredns.Plugin{}, RequiredTenantFields: required}
			cfg.Tenant.KubernetesVersion = v
			conformance.RunAddon(t, cfg)
		})
	}
}
