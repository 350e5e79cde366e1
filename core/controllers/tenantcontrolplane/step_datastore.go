package tenantcontrolplane

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/datastores"
	"github.com/openhcp/kamaji/core/pluginhost"
	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// Reasons of the DataStoreReady condition.
const (
	ReasonDataStoreNotFound      = "DataStoreNotFound"
	ReasonDataStoreSecretMissing = "DataStoreSecretMissing"
	ReasonDataStoreInvalid       = "DataStoreConfigInvalid"
	ReasonProvisioningFailed     = "ProvisioningFailed"
	ReasonUnsupportedConnection  = "UnsupportedConnection"
	ReasonDataStoreReady         = "Provisioned"

	// waitForObject: how long to wait for a missing DataStore or Secret to appear. No watch
	// fans DataStore events out to every TCP, so a bounded poll picks them up.
	waitForObject = 10 * time.Second
)

// stepDataStore provisions the tenant's slice of its DataStore through the driver's plugin
// (idempotent EnsureTenant) and stores what the apiserver needs to connect.
func stepDataStore(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionDataStoreReady
	name := p.tcp.Spec.DataStore
	ds := &kamajiv1alpha1.DataStore{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, ds); err != nil {
		if apierrors.IsNotFound(err) {
			e := failf(cond, ReasonDataStoreNotFound, "DataStore %q does not exist", name)
			e.retryAfter = waitForObject
			return e
		}
		return fail(cond, ReasonDataStoreNotFound, err)
	}
	p.dataStore = ds
	cfg, err := r.DataStores.Get(ctx, ds)
	if err != nil {
		e := fail(cond, ReasonDataStoreSecretMissing, fmt.Errorf("DataStore %s: %w", name, err))
		if datastores.IsMissingSecret(err) {
			e.retryAfter = waitForObject
		}
		return e
	}
	p.dsConfig = cfg

	plugin, _, err := r.Plugins.DataStore(ctx, ds.Spec.Driver)
	if err != nil {
		return pluginFailure(cond, err)
	}
	tenant := Tenant(p.tcp)
	cctx, cancel := context.WithTimeout(ctx, r.pluginCallTimeout())
	conn, err := plugin.EnsureTenant(cctx, cfg, tenant)
	cancel()
	if err != nil {
		var fe *sdk.FieldError
		if errors.As(err, &fe) {
			return fail(cond, ReasonDataStoreInvalid, fmt.Errorf("DataStore %s: %w", name, err))
		}
		return fail(cond, ReasonProvisioningFailed, fmt.Errorf("DataStore %s (driver %s): %w", name, ds.Spec.Driver, err))
	}
	p.conn = conn

	if err := ensureStorageSecret(ctx, r, p); err != nil {
		return err
	}
	st := &p.status.Storage
	if st.Setup.Schema != tenant.Schema || st.Setup.User != tenant.Username || st.DataStoreName != ds.Name {
		st.Setup.LastUpdate = metav1.NewTime(p.now)
	}
	st.Driver, st.DataStoreName = ds.Spec.Driver, ds.Name
	st.Setup.Schema, st.Setup.User = tenant.Schema, tenant.Username
	p.setCondition(cond, metav1.ConditionTrue, ReasonDataStoreReady,
		fmt.Sprintf("provisioned %q for user %q on DataStore %s", tenant.Schema, tenant.Username, ds.Name))
	return nil
}

// Tenant is the TCP's slice as the datastore plugin sees it.
func Tenant(tcp *kamajiv1alpha1.TenantControlPlane) datastore.Tenant {
	return datastore.Tenant{Namespace: tcp.Namespace, Name: tcp.Name, Schema: tcp.Spec.DataStoreSchema, Username: tcp.Spec.DataStoreUsername}
}

// pluginFailure turns a plugin host error into a condition with its reason and backoff.
func pluginFailure(cond string, err error) error {
	if pe, ok := pluginhost.AsError(err); ok {
		e := fail(cond, pe.Reason, err)
		e.retryAfter = pe.RetryAfter
		if e.retryAfter == 0 && pe.Reason == pluginhost.ReasonNotConfigured {
			e.retryAfter = waitForObject
		}
		return e
	}
	return fail(cond, pluginhost.ReasonHandshakeFailed, err)
}
