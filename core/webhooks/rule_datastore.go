package webhooks

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// ruleDataStore: the TCP names a DataStore (its own or the manager default), it exists, and a
// configured plugin serves its driver; otherwise the TCP could never be provisioned.
func ruleDataStore(ctx context.Context, rc *tcpRuleContext) field.ErrorList {
	path := field.NewPath("spec", "dataStore")
	name := rc.New.Spec.DataStore
	if name == "" {
		return field.ErrorList{field.Required(path, "no DataStore given and the manager has no --datastore default")}
	}
	if rc.Old != nil {
		// The data is where the old object (or, for a TCP created before spec.dataStore was
		// defaulted, its status) says; a new name would give the tenant an empty slice elsewhere.
		was := rc.Old.Spec.DataStore
		if was == "" {
			was = rc.Old.Status.Storage.DataStoreName
		}
		if was != "" && was != name {
			return ruleMigration(ctx, rc, path, was, name)
		}
		if rc.Old.Spec.DataStore == name {
			return nil // unchanged: a DataStore edited since must not lock the TCP
		}
	}
	return checkDataStore(ctx, rc.Reader, rc.Opts.Drivers, path, name)
}

func checkDataStore(ctx context.Context, r client.Reader, drivers Drivers, path *field.Path, name string) field.ErrorList {
	ds := &kamajiv1alpha1.DataStore{}
	if err := r.Get(ctx, client.ObjectKey{Name: name}, ds); err != nil {
		if apierrors.IsNotFound(err) {
			return field.ErrorList{field.NotFound(path, name)}
		}
		return field.ErrorList{field.InternalError(path, fmt.Errorf("reading DataStore %s: %w", name, err))}
	}
	if drivers != nil && !drivers.Served(ds.Spec.Driver) {
		return field.ErrorList{field.Invalid(path, name, fmt.Sprintf(
			"DataStore %s uses driver %q, which no configured plugin serves (served: %s)", name, ds.Spec.Driver, strings.Join(drivers.Names(), ", ")))}
	}
	return nil
}

// ruleMigration: a new spec.dataStore starts a migration of the tenant's data (see
// docs/migration.md). One at a time; not for a tenant with dataStoreOverrides (they would stay
// behind); the target must exist, be served, and hold no slice of another TCP under these names.
func ruleMigration(ctx context.Context, rc *tcpRuleContext, path *field.Path, from, to string) field.ErrorList {
	if m := rc.Old.Status.Storage.Migration; m != nil && m.Phase != kamajiv1alpha1.MigrationFailed {
		return field.ErrorList{field.Forbidden(path, fmt.Sprintf(
			"a migration from DataStore %s to %s is in progress (phase %s): wait until it ends before changing spec.dataStore", m.Source, m.Target, m.Phase))}
	}
	if len(rc.New.Spec.DataStoreOverrides) > 0 {
		return field.ErrorList{field.Forbidden(path, "a TenantControlPlane with spec.dataStoreOverrides cannot be migrated to another DataStore")}
	}
	if errs := checkDataStore(ctx, rc.Reader, rc.Opts.Drivers, path, to); len(errs) > 0 {
		return errs
	}
	return sliceTaken(ctx, rc, []string{to})
}
