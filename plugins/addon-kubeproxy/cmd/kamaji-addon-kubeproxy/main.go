// Command kamaji-addon-kubeproxy is the kube-proxy addon plugin. The Kamaji core starts it; run
// by hand it prints a hint and exits.
package main

import (
	"github.com/openhcp/kamaji/plugins/addon-kubeproxy/kubeproxy"
	"github.com/openhcp/kamaji/sdk/addon"
)

func main() {
	addon.Serve(kubeproxy.Plugin{}, addon.ServeOptions{})
}
