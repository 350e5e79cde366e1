package manager

import (
	"context"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/datastores"
	"github.com/openhcp/kamaji/core/pluginhost"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// sliceValidator lets admission ask a DataStore's driver whether it accepts a tenant's names.
type sliceValidator struct {
	host       *pluginhost.Host
	dataStores *datastores.Cache
}

func (v sliceValidator) ValidateTenant(ctx context.Context, ds *kamajiv1alpha1.DataStore, t datastore.Tenant) error {
	cfg, err := v.dataStores.Get(ctx, ds)
	if err != nil {
		return err
	}
	plugin, _, err := v.host.DataStore(ctx, ds.Spec.Driver)
	if err != nil {
		return err
	}
	return plugin.ValidateTenant(ctx, cfg, t)
}
