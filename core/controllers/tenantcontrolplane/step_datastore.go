package tenantcontrolplane

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/datastores"
	"github.com/openhcp/kamaji/core/pluginhost"
	"github.com/openhcp/kamaji/core/tenantpki"
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
	// ReasonSliceOwned: the schema or user is recorded, in the datastore, for another TCP.
	ReasonSliceOwned = "SliceOwnedByAnotherTenant"
	// ReasonDataStoreChangeRefused: the spec names another DataStore (or other names) than the
	// one holding the tenant's data; the core never switches silently.
	ReasonDataStoreChangeRefused = "DataStoreChangeRefused"

	// retrying ends the message of a configuration error found only here: the pass returns it
	// as an error, so the controller retries with its per-object exponential backoff (not a
	// fixed interval), and a DataStore created, changed or turned Ready enqueues its TCPs at once.
	retrying = "retrying with exponential backoff"
)

// stepDataStore provisions the tenant's slice of its DataStore through the driver's plugin
// (idempotent EnsureTenant) and stores what the apiserver needs to connect. A spec naming
// another DataStore than the one holding the data is a migration (stepMigration).
func stepDataStore(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionDataStoreReady
	st := &p.status.Storage
	if st.Migration != nil || (st.DataStoreName != "" && st.DataStoreName != p.tcp.Spec.DataStore) {
		// Every call of a migration goes to the plugin; what was remembered before may be gone.
		r.ensured.forget(client.ObjectKeyFromObject(p.tcp))
		if len(p.tcp.Spec.DataStoreOverrides) > 0 && st.Migration == nil {
			return failf(cond, ReasonDataStoreChangeRefused,
				"spec.dataStore is %q but the tenant's data is on DataStore %q, and a tenant with spec.dataStoreOverrides cannot be migrated: set spec.dataStore back to %q",
				p.tcp.Spec.DataStore, st.DataStoreName, st.DataStoreName)
		}
		return stepMigration(ctx, r, p)
	}
	if err := provision(ctx, r, p, p.tcp.Spec.DataStore); err != nil {
		return err
	}
	if c := meta.FindStatusCondition(p.status.Conditions, cond); c != nil && c.Status == metav1.ConditionTrue && c.Reason == ReasonMigrated {
		// The last migration's summary stays until something else is to be said.
		p.setCondition(cond, metav1.ConditionTrue, ReasonMigrated, c.Message)
		return nil
	}
	t := Tenant(p.tcp)
	p.setCondition(cond, metav1.ConditionTrue, ReasonDataStoreReady,
		fmt.Sprintf("provisioned %q for user %q on DataStore %s", t.Schema, t.Username, p.dataStore.Name))
	return nil
}

// provision provisions the tenant on DataStore name. The slice's identity (DataStore, schema,
// user) is written to the status before the first EnsureTenant, so that deletion knows what to
// deprovision even when provisioning failed half-way.
func provision(ctx context.Context, r *Reconciler, p *pass, name string) error {
	const cond = kamajiv1alpha1.ConditionDataStoreReady
	tenant := Tenant(p.tcp)
	st := &p.status.Storage
	if err := refuseSwitch(st, name, tenant); err != nil {
		return err
	}
	ds, cfg, err := r.dataStoreConfig(ctx, cond, name)
	if err != nil {
		return err
	}
	p.dataStore, p.dsConfig = ds, cfg

	newSlice := st.DataStoreName != ds.Name || st.Setup.Schema != tenant.Schema || st.Setup.User != tenant.Username
	// At rest, the plugin is not called again for the same inputs (see ensuredSlices); a new
	// slice, a migration or a missing storage Secret always call it.
	key, sum := client.ObjectKeyFromObject(p.tcp), ensureInputs(p.tcp, ds, cfg, tenant)
	conn, cached := datastore.Connection{}, false
	if !newSlice && st.Migration == nil {
		if c, ok := r.ensured.lookup(key, ensuredMain, sum, p.now); ok && r.storageSecretPresent(ctx, p, c) {
			conn, cached = c, true
		}
	}
	// The plugin is needed only for a call: a slice at rest does not depend on it being up (a
	// plugin that restarts leaves its tenants alone). It is looked up before a new slice is
	// recorded, so a driver no plugin serves records nothing that deletion would then wait on.
	var plugin *datastore.Client
	if !cached {
		var err error
		if plugin, _, err = r.Plugins.DataStore(ctx, ds.Spec.Driver); err != nil {
			return pluginFailure(cond, err)
		}
	}
	if newSlice {
		st.Driver, st.DataStoreName = ds.Spec.Driver, ds.Name
		st.Setup.Schema, st.Setup.User = tenant.Schema, tenant.Username
		st.Setup.LastUpdate = metav1.NewTime(p.now)
		if err := r.recordStatus(ctx, p); err != nil {
			return fail(cond, ReasonProvisioningFailed, fmt.Errorf("recording the slice before provisioning it: %w", err))
		}
	}
	if !cached {
		cctx, cancel := context.WithTimeout(ctx, r.pluginCallTimeout())
		var err error
		conn, err = plugin.EnsureTenant(cctx, cfg, tenant)
		cancel()
		if err != nil {
			return provisioningFailure(cond, ds, err)
		}
	}
	p.conn = conn
	if err := ensureStorageSecret(ctx, r, p); err != nil {
		return err
	}
	st.Driver = ds.Spec.Driver
	if !cached && st.Migration == nil {
		r.ensured.remember(key, ensuredMain, sum, conn, p.now, r.Options.DataStoreVerifyInterval)
	}
	return nil
}

// ensuredMain is the role of the main DataStore's slice in ensuredSlices.
const ensuredMain = "main"

// storageSecretPresent reports whether the Secret the connection is stored in exists: a deleted
// one is provisioned again from a fresh EnsureTenant, not from memory.
func (r *Reconciler) storageSecretPresent(ctx context.Context, p *pass, conn datastore.Connection) bool {
	name := ""
	switch {
	case conn.Etcd != nil:
		name = tenantpki.SecretName(p.tcp.Name, tenantpki.Datastore)
	case conn.Kine != nil:
		name = DataStoreConfigSecretName(p.tcp.Name)
	default:
		return false
	}
	cur, err := r.readSecret(ctx, p, name)
	return err == nil && cur.obj != nil
}

// refuseSwitch stops a pass whose spec names another DataStore, schema or user than the status
// recorded: the data is where the status says, and provisioning an empty slice elsewhere would
// hide it. Admission refuses such changes; this guards against a manager whose webhook did not
// run (or an object restored from a backup).
func refuseSwitch(st *kamajiv1alpha1.StorageStatus, dataStore string, t datastore.Tenant) error {
	const cond = kamajiv1alpha1.ConditionDataStoreReady
	switch {
	case st.DataStoreName != "" && st.DataStoreName != dataStore:
		return failf(cond, ReasonDataStoreChangeRefused,
			"spec.dataStore is %q but the tenant's data is on DataStore %q, and moving it between DataStores (migration) is not available in this release: set spec.dataStore back to %q",
			dataStore, st.DataStoreName, st.DataStoreName)
	case st.Setup.Schema != "" && (st.Setup.Schema != t.Schema || st.Setup.User != t.Username):
		return failf(cond, ReasonDataStoreChangeRefused,
			"spec.dataStoreSchema/dataStoreUsername (%q/%q) differ from the slice holding the tenant's data (%q/%q); they cannot change",
			t.Schema, t.Username, st.Setup.Schema, st.Setup.User)
	}
	return nil
}

// dataStorePlugin reads a DataStore, resolves its Secrets and gets its driver's plugin.
func (r *Reconciler) dataStorePlugin(ctx context.Context, cond, name string) (*kamajiv1alpha1.DataStore, datastore.Config, *datastore.Client, error) {
	ds, cfg, err := r.dataStoreConfig(ctx, cond, name)
	if err != nil {
		return nil, datastore.Config{}, nil, err
	}
	plugin, _, err := r.Plugins.DataStore(ctx, ds.Spec.Driver)
	if err != nil {
		return nil, datastore.Config{}, nil, pluginFailure(cond, err)
	}
	return ds, cfg, plugin, nil
}

// dataStoreConfig reads a DataStore and resolves its Secrets.
func (r *Reconciler) dataStoreConfig(ctx context.Context, cond, name string) (*kamajiv1alpha1.DataStore, datastore.Config, error) {
	ds := &kamajiv1alpha1.DataStore{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, ds); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, datastore.Config{}, failf(cond, ReasonDataStoreNotFound, "DataStore %q does not exist (%s, and at once when it is created)", name, retrying)
		}
		return nil, datastore.Config{}, fail(cond, ReasonDataStoreNotFound, err)
	}
	cfg, err := r.DataStores.Get(ctx, ds)
	if err != nil {
		if datastores.IsMissingSecret(err) {
			err = fmt.Errorf("%w (%s, and at once when the DataStore turns Ready)", err, retrying)
		}
		return nil, datastore.Config{}, fail(cond, ReasonDataStoreSecretMissing, fmt.Errorf("DataStore %s: %w", name, err))
	}
	return ds, cfg, nil
}

// provisioningFailure names why EnsureTenant failed. A slice owned by another TCP cannot heal
// by itself: it is retried with the controller's growing backoff, never in a tight loop.
func provisioningFailure(cond string, ds *kamajiv1alpha1.DataStore, err error) error {
	var fe *sdk.FieldError
	var oe *sdk.OwnedError
	switch {
	case errors.As(err, &oe):
		return fail(cond, ReasonSliceOwned, fmt.Errorf("DataStore %s: %w", ds.Name, err))
	case errors.As(err, &fe):
		return fail(cond, ReasonDataStoreInvalid, fmt.Errorf("DataStore %s: %w", ds.Name, err))
	}
	return fail(cond, ReasonProvisioningFailed, fmt.Errorf("DataStore %s (driver %s): %w", ds.Name, ds.Spec.Driver, err))
}

// recordStatus writes the pass's status now, ahead of the end of the pass.
func (r *Reconciler) recordStatus(ctx context.Context, p *pass) error {
	// A migration records its phases mid-pass, and may freeze, copy and switch within one pass:
	// from its first record the version status says Migrating, as the pass's end would.
	if migrating(p.status.Storage) {
		state := kamajiv1alpha1.VersionMigrating
		p.status.Kubernetes.Version.Status = &state
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusWriteTimeout)
	defer cancel()
	return r.applyStatus(sctx, p)
}

// Tenant is the TCP's slice as the datastore plugin sees it, with the TCP as its owner.
func Tenant(tcp *kamajiv1alpha1.TenantControlPlane) datastore.Tenant {
	return datastore.Tenant{Namespace: tcp.Namespace, Name: tcp.Name, Schema: tcp.Spec.DataStoreSchema, Username: tcp.Spec.DataStoreUsername, UID: string(tcp.UID)}
}

// pluginFailure turns a plugin host error into a condition with its reason and backoff: the
// host's own restart backoff when it gives one, the controller's exponential backoff otherwise.
// A plugin the manager is not configured with only comes with a restart of the manager (which
// reconciles every TCP): polling for it at a fixed interval would be pointless.
func pluginFailure(cond string, err error) error {
	if pe, ok := pluginhost.AsError(err); ok {
		if pe.Reason == pluginhost.ReasonNotConfigured {
			err = fmt.Errorf("%w (%s; a plugin is added by restarting the manager with it configured)", err, retrying)
		}
		e := fail(cond, pe.Reason, err)
		e.retryAfter = pe.RetryAfter
		return e
	}
	return fail(cond, pluginhost.ReasonHandshakeFailed, err)
}
