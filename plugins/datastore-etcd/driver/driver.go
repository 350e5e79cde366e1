// Package driver is the etcd datastore driver: many tenants share one etcd cluster, each
// confined by etcd's RBAC to its own key prefix and authenticated by a client certificate whose
// CN is the tenant's etcd user. Who owns each prefix and user is recorded in etcd (owner.go).
package driver

import (
	"context"
	"fmt"

	"github.com/openhcp/kamaji/sdk/datastore"
)

// Version is the plugin release, set at build time with
// -ldflags "-X github.com/openhcp/kamaji/plugins/datastore-etcd/driver.Version=1.2.3".
var Version = "0.1.0"

// Name is the plugin's name in GetPluginInfo.
const Name = "kamaji-datastore-etcd"

// Driver implements datastore.Plugin for etcd. It is safe for concurrent use; its state is a
// cache of cluster connections and, per cluster, the lock and role cache of cluster.
type Driver struct {
	pool     *pool
	clusters clusters
}

var _ datastore.Plugin = (*Driver)(nil)

// New returns a driver with an empty connection cache.
func New() *Driver { return &Driver{pool: newPool(maxCachedClients)} }

// Close closes the cached connections.
func (d *Driver) Close() { d.pool.closeAll() }

func (d *Driver) GetPluginInfo(context.Context) (datastore.PluginInfo, error) {
	return datastore.PluginInfo{Name: Name, VendorVersion: Version, Drivers: []string{"etcd"}}, nil
}

func (d *Driver) Capabilities(context.Context) ([]datastore.Capability, error) {
	return []datastore.Capability{
		datastore.CapabilityMultiTenant,
		datastore.CapabilityDirectEtcd,
		datastore.CapabilityNeedsCAKey,
		datastore.CapabilityUsage,
		datastore.CapabilityExportImport,
		datastore.CapabilityValidateTenant,
	}, nil
}

// Probe is always ready: the driver holds no state that could go bad, and the health of an etcd
// cluster belongs to ValidateConfig, which knows which cluster.
func (d *Driver) Probe(context.Context) (datastore.ProbeResult, error) {
	return datastore.ProbeResult{Ready: true, Message: fmt.Sprintf("%d cached connections", d.pool.len())}, nil
}
