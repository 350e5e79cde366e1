// Command testplugin serves the fake plugins through the real transport for the SDK's tests.
//
//	testplugin [-kind datastore|addon] [-protocol N]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/addon"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/internal/fake"
	"github.com/openhcp/kamaji/sdk/internal/transport"
)

func main() {
	kind := flag.String("kind", datastore.PluginName, "contract to serve: datastore or addon")
	protocol := flag.Int("protocol", sdk.ProtocolVersion, "transport protocol version to serve")
	flag.Parse()
	opts := transport.ServeOptions{ProtocolVersion: *protocol}
	switch *kind {
	case addon.PluginName:
		transport.Serve(addon.PluginName, addon.NewGRPCPlugin(fake.Addon{}), opts)
	default:
		d := fake.NewDatastore()
		// go-plugin hands the host's certificate to the plugin in this variable when AutoMTLS is on.
		d.ProbeMessage = fmt.Sprintf("mtls=%t", os.Getenv("PLUGIN_CLIENT_CERT") != "")
		transport.Serve(datastore.PluginName, datastore.NewGRPCPlugin(d), opts)
	}
}
