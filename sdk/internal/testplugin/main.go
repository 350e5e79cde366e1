// Command testplugin serves the fake plugins through the real transport for the SDK's tests.
//
//	testplugin [-kind datastore|addon] [-protocol N]
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/addon"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/internal/fake"
	"github.com/openhcp/kamaji/sdk/internal/transport"
)

func main() {
	kind := flag.String("kind", datastore.PluginName, "contract to serve: datastore or addon")
	protocol := flag.Int("protocol", sdk.ProtocolVersion, "transport protocol version to serve")
	echo := flag.Bool("echo-secrets", false, "answer every datastore call with an error quoting the DSN and keys it was sent")
	flag.Parse()
	opts := transport.ServeOptions{ProtocolVersion: *protocol}
	switch *kind {
	case addon.PluginName:
		transport.Serve(addon.PluginName, addon.NewGRPCPlugin(fake.Addon{}), opts)
	default:
		d := fake.NewDatastore()
		// go-plugin hands the host's certificate to the plugin in this variable when AutoMTLS is on.
		d.ProbeMessage = fmt.Sprintf("mtls=%t", os.Getenv("PLUGIN_CLIENT_CERT") != "")
		var impl datastore.Plugin = d
		if *echo {
			impl = echoSecrets{d}
		}
		transport.Serve(datastore.PluginName, datastore.NewGRPCPlugin(impl), opts)
	}
}

// echoSecrets is the careless third-party plugin the host must not trust: its errors quote
// the connection string and key material it was given.
type echoSecrets struct{ *fake.Datastore }

func dsn(cfg datastore.Config) string {
	return "postgres://" + cfg.Username + ":" + url.QueryEscape(cfg.Password) + "@" + strings.Join(cfg.Endpoints, ",") + "/kamaji"
}

func (echoSecrets) ValidateConfig(_ context.Context, cfg datastore.Config) error {
	return sdk.InvalidField("endpoints", "cannot parse %s (password %s)", dsn(cfg), cfg.Password)
}

func (echoSecrets) EnsureTenant(_ context.Context, cfg datastore.Config, _ datastore.Tenant) (datastore.Connection, error) {
	return datastore.Connection{}, fmt.Errorf("dial %s: connection refused; client key %q", dsn(cfg), cfg.ClientKey)
}

func (echoSecrets) DeleteTenant(_ context.Context, cfg datastore.Config, t datastore.Tenant) error {
	return sdk.Owned("tenant.schema", "%s is owned by someone else according to %s", t.Schema, dsn(cfg))
}
