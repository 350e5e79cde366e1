// Command kamaji-addon-konnectivity is the Konnectivity addon plugin. The Kamaji core starts it;
// run by hand it prints a hint and exits.
package main

import (
	"github.com/openhcp/kamaji/plugins/addon-konnectivity/konnectivity"
	"github.com/openhcp/kamaji/sdk/addon"
)

func main() {
	addon.Serve(konnectivity.Plugin{}, addon.ServeOptions{})
}
