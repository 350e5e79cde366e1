// Command kamaji-addon-coredns is the CoreDNS addon plugin. The Kamaji core starts it; run by
// hand it prints a hint and exits.
package main

import (
	"github.com/openhcp/kamaji/plugins/addon-coredns/coredns"
	"github.com/openhcp/kamaji/sdk/addon"
)

func main() {
	addon.Serve(coredns.Plugin{}, addon.ServeOptions{})
}
