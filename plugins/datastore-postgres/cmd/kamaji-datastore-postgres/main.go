// Command kamaji-datastore-postgres is the PostgreSQL datastore plugin. The Kamaji core starts
// it; run by hand it prints a hint and exits.
//
// Flags (also read from the environment):
//
//	--kine-image  image of the kine sidecar ($KAMAJI_KINE_IMAGE, default rancher/kine:v0.17.5-amd64);
//	              a DataStore overrides it with parameters.kineImage.
package main

import (
	"flag"
	"os"

	"github.com/openhcp/kamaji/plugins/datastore-postgres/driver"
	"github.com/openhcp/kamaji/sdk/datastore"
)

func main() {
	image := os.Getenv("KAMAJI_KINE_IMAGE")
	if image == "" {
		image = driver.DefaultKineImage
	}
	flag.StringVar(&image, "kine-image", image, "image of the kine sidecar (a DataStore overrides it with parameters.kineImage)")
	flag.Parse()
	d := driver.New(driver.Options{KineImage: image})
	defer d.Close()
	datastore.Serve(d, datastore.ServeOptions{})
}
