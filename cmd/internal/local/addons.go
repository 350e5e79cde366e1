package local

import (
	"os"
	"path/filepath"

	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/core/testenv"
)

// addonPlugins are the addon plugins `make up` builds beside kamaji: the manager gets all of
// them, so a TenantControlPlane of this plane may ask for spec.addons.coreDNS, kubeProxy and
// konnectivity (whose server sidecar and agent run from the cache, see hack/kube-bins.sh).
var addonPlugins = []struct{ plugin, addon string }{
	{"addon-coredns", "coredns"},
	{"addon-kubeproxy", "kube-proxy"},
	{"addon-konnectivity", "konnectivity"},
}

// addonPluginEntries are the kamaji.yaml entries of those found in the bin folder, each
// binary pinned by its sha256. One not built is left out (the plane runs without that addon:
// a TCP asking for it gets the core's condition naming the missing plugin).
func (p *Plane) addonPluginEntries() ([]settings.Plugin, error) {
	var out []settings.Plugin
	for _, a := range addonPlugins {
		bin := filepath.Join(p.cfg.BinDir, "kamaji-"+a.plugin)
		if _, err := os.Stat(bin); os.IsNotExist(err) {
			continue
		}
		entry, err := testenv.PluginEntry(bin, a.plugin, settings.KindAddon, a.addon)
		if err != nil {
			return nil, err
		}
		out = append(out, entry)
	}
	return out, nil
}
