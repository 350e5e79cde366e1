// Command kamaji-datastore-etcd is the etcd datastore plugin. The Kamaji core starts it; run by
// hand it prints a hint and exits.
package main

import (
	"github.com/openhcp/kamaji/plugins/datastore-etcd/driver"
	"github.com/openhcp/kamaji/sdk/datastore"
)

func main() {
	d := driver.New()
	defer d.Close()
	datastore.Serve(d, datastore.ServeOptions{})
}
