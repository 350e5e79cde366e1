// Command faultplugin is a plugin that misbehaves on request, for the plugin host's tests. It
// uses only the sdk's public API.
//
//	faultplugin [-kind datastore|addon] [-name NAME] [-pid-file FILE] [-wait-for FILE] [-hang-probe]
//
// -pid-file writes the process id to FILE first thing.
// -wait-for delays the start (before the handshake) until FILE exists: a slow start the test
// ends when it chooses. -hang-probe makes Probe block forever, ignoring its context: a plugin
// that is alive but hung.
package main

import (
	"context"
	"flag"
	"os"
	"strconv"
	"time"

	"github.com/openhcp/kamaji/sdk/addon"
	"github.com/openhcp/kamaji/sdk/datastore"
)

var hangProbe bool

func main() {
	kind := flag.String("kind", datastore.PluginName, "contract to serve: datastore or addon")
	name := flag.String("name", "faulty", "the driver or addon served")
	waitFor := flag.String("wait-for", "", "start only once this file exists")
	flag.BoolVar(&hangProbe, "hang-probe", false, "Probe never returns")
	pidFile := flag.String("pid-file", "", "write the process id to this file at start")
	flag.Parse()
	if *pidFile != "" {
		if err := os.WriteFile(*pidFile, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
			panic(err)
		}
	}
	if *waitFor != "" {
		for {
			if _, err := os.Stat(*waitFor); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if *kind == addon.PluginName {
		addon.Serve(addonPlugin{name: *name}, addon.ServeOptions{})
		return
	}
	datastore.Serve(dataStorePlugin{name: *name}, datastore.ServeOptions{})
}

func probe() {
	if hangProbe {
		select {} // hung: not even the caller's deadline ends it
	}
}

type dataStorePlugin struct {
	datastore.Unimplemented
	name string
}

func (p dataStorePlugin) GetPluginInfo(context.Context) (datastore.PluginInfo, error) {
	return datastore.PluginInfo{Name: "faulty", VendorVersion: "0.0.1", Drivers: []string{p.name}}, nil
}

func (dataStorePlugin) Capabilities(context.Context) ([]datastore.Capability, error) {
	return nil, nil
}

func (dataStorePlugin) Probe(context.Context) (datastore.ProbeResult, error) {
	probe()
	return datastore.ProbeResult{Ready: true}, nil
}

func (dataStorePlugin) ValidateConfig(context.Context, datastore.Config) error { return nil }

func (dataStorePlugin) EnsureTenant(context.Context, datastore.Config, datastore.Tenant) (datastore.Connection, error) {
	return datastore.Connection{}, nil
}

func (dataStorePlugin) DeleteTenant(context.Context, datastore.Config, datastore.Tenant) error {
	return nil
}

type addonPlugin struct{ name string }

func (p addonPlugin) GetPluginInfo(context.Context) (addon.PluginInfo, error) {
	return addon.PluginInfo{Name: "faulty-addon", VendorVersion: "0.0.1", Addons: []string{p.name}}, nil
}

func (addonPlugin) Capabilities(context.Context) ([]addon.Capability, error) { return nil, nil }

func (addonPlugin) Probe(context.Context) (addon.ProbeResult, error) {
	probe()
	return addon.ProbeResult{Ready: true}, nil
}

func (addonPlugin) Render(context.Context, addon.RenderRequest) (addon.RenderResult, error) {
	return addon.RenderResult{}, nil
}
