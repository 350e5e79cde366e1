package local

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openhcp/kamaji/core/testenv"
)

// The plane's kube-proxy configuration, as the real kube-proxy reads it (its --write-config-to
// prints the configuration after its defaults): rules sync at most every 100 ms. A 0 there is
// read as unset, kube-proxy's default of 1 s, which held new endpoints back by up to a second.
func TestKubeProxyConfig(t *testing.T) {
	bin, err := testenv.Binary("kube-proxy")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.StateDir = t.TempDir()
	p := &Plane{cfg: cfg}
	if err := p.kubeProxyConfig(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "effective.yaml")
	if msg, err := exec.Command(bin, "--config="+cfg.path("kube-proxy.yaml"), "--write-config-to="+out).CombinedOutput(); err != nil {
		t.Fatalf("kube-proxy --write-config-to: %v\n%s", err, msg)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// The iptables section's own lines (indented, up to the next top-level key): the effective
	// value after kube-proxy's defaults.
	_, rest, _ := strings.Cut(string(data), "\niptables:\n")
	iptables := ""
	for _, l := range strings.SplitAfter(rest, "\n") {
		if !strings.HasPrefix(l, " ") {
			break
		}
		iptables += l
	}
	if !strings.Contains(iptables, "  minSyncPeriod: 100ms\n") {
		t.Errorf("kube-proxy's effective iptables configuration:\n%s\nwant minSyncPeriod: 100ms", iptables)
	}
	for _, want := range []string{"mode: iptables", "hostnameOverride: " + cfg.NodeName, "clusterCIDR: " + cfg.PodCIDR} {
		if !strings.Contains(string(data), want) {
			t.Errorf("kube-proxy's effective configuration has no %q:\n%s", want, data)
		}
	}
}
