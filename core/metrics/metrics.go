// Package metrics defines every Prometheus metric the manager exports on its /metrics endpoint
// (--metrics-bind-address): the build, the reconcile steps' latency and the plugins' RPCs and
// restarts, registered on controller-runtime's registry beside its own; then the
// TenantControlPlanes, DataStores and their certificates, read from the manager's informer
// cache at scrape time and written after the registry's (WithState). docs/operations.md lists
// them; deploy/grafana/kamaji-dashboard.json charts them.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Collectors are the collectors this package registers on controller-runtime's registry, for
// tests that check what the manager exports.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{buildInfo, handlerTime, pluginRPCDuration, pluginRestarts, pluginStartFailures, pluginInfo, pluginUp, eventsDropped, starts}
}

func init() {
	for _, c := range Collectors() {
		ctrlmetrics.Registry.MustRegister(c)
	}
}
