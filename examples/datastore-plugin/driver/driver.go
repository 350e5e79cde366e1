// Package driver is example-etcd, a datastore driver written from docs/plugins/author-guide.md
// the way a third party would: many tenants share one etcd, each confined by etcd's RBAC to its
// prefix "/<schema>/" and authenticated by a client certificate whose CN is its etcd user. Who
// owns each schema and each user is recorded in etcd itself (owners.go).
package driver

import (
	"context"
	"fmt"

	"github.com/openhcp/kamaji/sdk/datastore"
)

const (
	// DriverName is the DataStore spec.driver value this plugin serves.
	DriverName = "example-etcd"
	// Name is the plugin's name in GetPluginInfo.
	Name = "kamaji-datastore-example"
)

// Version is the plugin release, set at build time with
// -ldflags "-X example.com/kamaji-datastore-example/driver.Version=1.2.3".
var Version = "0.1.0"

// Driver implements datastore.Plugin. Its only state is a cache of etcd clients.
type Driver struct {
	clients *clientCache
}

var _ datastore.Plugin = (*Driver)(nil)

// New returns a driver with an empty client cache.
func New() *Driver { return &Driver{clients: newClientCache(maxClients)} }

// Close closes the cached clients.
func (d *Driver) Close() { d.clients.closeAll() }

func (d *Driver) GetPluginInfo(context.Context) (datastore.PluginInfo, error) {
	return datastore.PluginInfo{Name: Name, VendorVersion: Version, Drivers: []string{DriverName}}, nil
}

func (d *Driver) Capabilities(context.Context) ([]datastore.Capability, error) {
	return []datastore.Capability{
		datastore.CapabilityMultiTenant,
		datastore.CapabilityDirectEtcd,   // EnsureTenant answers with an etcd connection
		datastore.CapabilityNeedsCAKey,   // the core signs the tenant's client certificate
		datastore.CapabilityUsage,        // GetUsage
		datastore.CapabilityExportImport, // Export and Import
		datastore.CapabilityValidateTenant,
	}, nil
}

// Probe is always ready: the driver keeps nothing that can go bad. Whether an etcd answers is
// ValidateConfig's question, which knows which etcd.
func (d *Driver) Probe(context.Context) (datastore.ProbeResult, error) {
	return datastore.ProbeResult{Ready: true, Message: fmt.Sprintf("%d cached etcd clients", d.clients.len())}, nil
}
