// Command kamaji-datastore-example serves the example-etcd driver. The Kamaji core starts it;
// run by hand, it prints a hint and exits.
package main

import (
	"example.com/kamaji-datastore-example/driver"
	"github.com/openhcp/kamaji/sdk/datastore"
)

func main() {
	d := driver.New()
	defer d.Close()
	datastore.Serve(d, datastore.ServeOptions{})
}
