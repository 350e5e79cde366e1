// Command kamaji-datastore-nats is the NATS JetStream datastore plugin. The Kamaji core starts
// it; run by hand it prints a hint and exits.
//
// Flags (also read from the environment):
//
//	--auth-mode   jwt (default): DataStores give an account signing key, tenants get users
//	              restricted to their bucket, many tenants per DataStore (MULTI_TENANT);
//	              basic: plain credentials, one tenant per DataStore ($KAMAJI_NATS_AUTH_MODE)
//	--driver      the DataStore spec.driver served ($KAMAJI_NATS_DRIVER, default NATS)
//	--kine-image  image of the kine sidecar ($KAMAJI_KINE_IMAGE, default rancher/kine:v0.17.5-amd64);
//	              a DataStore overrides it with parameters.kineImage.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/openhcp/kamaji/plugins/datastore-nats/driver"
	"github.com/openhcp/kamaji/sdk/datastore"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	image := env("KAMAJI_KINE_IMAGE", driver.DefaultKineImage)
	mode := env("KAMAJI_NATS_AUTH_MODE", string(driver.AuthJWT))
	name := env("KAMAJI_NATS_DRIVER", driver.DefaultDriver)
	flag.StringVar(&image, "kine-image", image, "image of the kine sidecar (a DataStore overrides it with parameters.kineImage)")
	flag.StringVar(&mode, "auth-mode", mode, "jwt (account signing key, multi-tenant) or basic (plain credentials, one tenant per DataStore)")
	flag.StringVar(&name, "driver", name, "the DataStore spec.driver served")
	flag.Parse()
	if mode != string(driver.AuthJWT) && mode != string(driver.AuthBasic) {
		fmt.Fprintf(os.Stderr, "--auth-mode: want jwt or basic, got %q\n", mode)
		os.Exit(2)
	}
	d := driver.New(driver.Options{KineImage: image, AuthMode: driver.AuthMode(mode), Driver: name})
	defer d.Close()
	datastore.Serve(d, datastore.ServeOptions{})
}
