// Command hungaddon is the test addon plugin of the chaos suite's hung-addon scenario: an addon
// plugin (built with the sdk, like plugins/addon-coredns) whose first Render never returns.
// It models a plugin deadlocked on a lock: Render takes the plugin's lock and never gives it
// back, and Probe, which needs the same lock, hangs from then on, so only the host's periodic
// probe with its deadline can tell the plugin is hung and restart it. A fresh process answers
// Probe until its first Render.
package main

import (
	"context"
	"sync"

	"github.com/openhcp/kamaji/sdk/addon"
)

type plugin struct{ mu sync.Mutex }

func (*plugin) GetPluginInfo(context.Context) (addon.PluginInfo, error) {
	return addon.PluginInfo{Name: "kamaji-chaos-hung-addon", VendorVersion: "0.0.0", Addons: []string{"coredns"}}, nil
}

func (*plugin) Capabilities(context.Context) ([]addon.Capability, error) { return nil, nil }

func (p *plugin) Probe(context.Context) (addon.ProbeResult, error) {
	p.mu.Lock() // hangs once Render holds the lock: the probe's deadline is what ends the wait
	defer p.mu.Unlock()
	return addon.ProbeResult{Ready: true}, nil
}

func (p *plugin) Render(context.Context, addon.RenderRequest) (addon.RenderResult, error) {
	p.mu.Lock() // never unlocked: the deadlock
	select {}
}

func main() {
	addon.Serve(&plugin{}, addon.ServeOptions{})
}
