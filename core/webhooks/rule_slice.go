package webhooks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// SliceValidator asks a DataStore's driver, through its plugin, whether it can provision a
// tenant's schema and user (ValidateTenant). It answers a *sdk.FieldError for a refused name;
// any other error means it could not ask, and admission then leaves the verdict to the
// reconcile (the TCP's DataStoreReady condition).
type SliceValidator interface {
	ValidateTenant(ctx context.Context, ds *kamajiv1alpha1.DataStore, t datastore.Tenant) error
}

// sliceValidateTimeout keeps admission well inside the webhook's 10 s, a plugin's cold start
// included.
const sliceValidateTimeout = 5 * time.Second

// ruleSlice: on creation, the tenant's slice on each of its DataStores (main and overrides) is
// its own: no other TCP uses that (DataStore, schema) or (DataStore, user), by spec or by what
// its status recorded; and the driver accepts the names. The plugins also refuse a slice
// recorded for another owner, which settles two creations racing past this check.
func ruleSlice(ctx context.Context, rc *tcpRuleContext) field.ErrorList {
	if rc.Old != nil {
		return nil // schema, user, DataStore and overrides cannot change (CEL and the rules above)
	}
	tcp := rc.New
	stores := []string{tcp.Spec.DataStore}
	for _, o := range tcp.Spec.DataStoreOverrides {
		stores = append(stores, o.DataStore)
	}
	return sliceTaken(ctx, rc, stores)
}

// sliceTaken checks the tenant's names on the given DataStores against every other TCP, then
// asks each DataStore's driver whether it accepts them.
func sliceTaken(ctx context.Context, rc *tcpRuleContext, stores []string) field.ErrorList {
	tcp := rc.New
	var errs field.ErrorList
	schemaPath, userPath := field.NewPath("spec", "dataStoreSchema"), field.NewPath("spec", "dataStoreUsername")
	list, err := sliceHolders(ctx, rc, stores)
	if err != nil {
		return field.ErrorList{field.InternalError(schemaPath, fmt.Errorf("listing TenantControlPlanes: %w", err))}
	}
	for _, other := range list {
		if other.Namespace == tcp.Namespace && other.Name == tcp.Name {
			continue
		}
		for _, s := range slicesOf(&other) {
			for _, ds := range stores {
				if s.dataStore != ds {
					continue
				}
				owner := other.Namespace + "/" + other.Name
				taken := func(p *field.Path, v string) {
					e := field.Invalid(p, v, fmt.Sprintf("already used on DataStore %s by TenantControlPlane %s", ds, owner))
					if !slices.ContainsFunc(errs, func(x *field.Error) bool { return x.Error() == e.Error() }) {
						errs = append(errs, e)
					}
				}
				if s.schema == tcp.Spec.DataStoreSchema {
					taken(schemaPath, s.schema)
				}
				if s.user == tcp.Spec.DataStoreUsername {
					taken(userPath, s.user)
				}
			}
		}
	}
	if len(errs) > 0 || rc.Opts.Slices == nil {
		return errs
	}
	for _, name := range unique(stores) {
		ds := &kamajiv1alpha1.DataStore{}
		if err := rc.Reader.Get(ctx, client.ObjectKey{Name: name}, ds); err != nil {
			continue // ruleDataStore reports it
		}
		vctx, cancel := context.WithTimeout(ctx, sliceValidateTimeout)
		err := rc.Opts.Slices.ValidateTenant(vctx, ds, datastore.Tenant{
			Namespace: tcp.Namespace, Name: tcp.Name, Schema: tcp.Spec.DataStoreSchema, Username: tcp.Spec.DataStoreUsername,
		})
		cancel()
		var fe *sdk.FieldError
		switch {
		case err == nil, errors.Is(err, sdk.ErrUnimplemented):
		case errors.As(err, &fe):
			p, value := schemaPath, tcp.Spec.DataStoreSchema
			if fe.Field == "tenant.username" {
				p, value = userPath, tcp.Spec.DataStoreUsername
			}
			errs = append(errs, field.Invalid(p, value, fmt.Sprintf("DataStore %s (driver %s) refuses it: %s", name, ds.Spec.Driver, fe.Message)))
		default:
			logf.FromContext(ctx).Info("could not ask the driver to validate the tenant's names; the reconcile will", "dataStore", name, "error", err.Error())
		}
	}
	return errs
}

// SliceIndex is the manager cache's index of TCPs by the slices they hold (SliceIndexValues):
// "schema:<DataStore>/<schema>" and "user:<DataStore>/<user>".
const SliceIndex = "kamaji.clastix.io/slice"

// SliceIndexValues are a TCP's SliceIndex values.
func SliceIndexValues(obj client.Object) []string {
	tcp, ok := obj.(*kamajiv1alpha1.TenantControlPlane)
	if !ok {
		return nil
	}
	var out []string
	for _, s := range slicesOf(tcp) {
		for _, v := range []string{"schema:" + s.dataStore + "/" + s.schema, "user:" + s.dataStore + "/" + s.user} {
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

// sliceHolders are the TCPs that may hold the new TCP's schema or user on one of stores: from
// the manager's cache by SliceIndex, or every TCP from the API server without a cache. A TCP
// created a moment ago may not be in the cache yet; the plugins refuse a slice recorded for
// another owner, which settles that race as it settles two creations at once. Listing every
// TCP from the API server for each creation made creating 1,000 TCPs quadratic.
func sliceHolders(ctx context.Context, rc *tcpRuleContext, stores []string) ([]kamajiv1alpha1.TenantControlPlane, error) {
	if rc.Cached == nil {
		var list kamajiv1alpha1.TenantControlPlaneList
		err := rc.Reader.List(ctx, &list)
		return list.Items, err
	}
	var out []kamajiv1alpha1.TenantControlPlane
	seen := map[string]bool{}
	for _, ds := range unique(stores) {
		for _, v := range []string{"schema:" + ds + "/" + rc.New.Spec.DataStoreSchema, "user:" + ds + "/" + rc.New.Spec.DataStoreUsername} {
			var list kamajiv1alpha1.TenantControlPlaneList
			if err := rc.Cached.List(ctx, &list, client.MatchingFields{SliceIndex: v}); err != nil {
				return nil, err
			}
			for _, tcp := range list.Items {
				if k := tcp.Namespace + "/" + tcp.Name; !seen[k] {
					seen[k] = true
					out = append(out, tcp)
				}
			}
		}
	}
	return out, nil
}

type sliceRef struct{ dataStore, schema, user string }

// slicesOf lists the slices a TCP holds or will hold: by spec, and by what its status recorded.
func slicesOf(tcp *kamajiv1alpha1.TenantControlPlane) []sliceRef {
	var out []sliceRef
	schema, user := tcp.Spec.DataStoreSchema, tcp.Spec.DataStoreUsername
	if tcp.Spec.DataStore != "" {
		out = append(out, sliceRef{tcp.Spec.DataStore, schema, user})
	}
	for _, o := range tcp.Spec.DataStoreOverrides {
		out = append(out, sliceRef{o.DataStore, schema, user})
	}
	if st := tcp.Status.Storage; st.DataStoreName != "" {
		out = append(out, sliceRef{st.DataStoreName, st.Setup.Schema, st.Setup.User})
	}
	if m := tcp.Status.Storage.Migration; m != nil && m.Phase != kamajiv1alpha1.MigrationFailed {
		for _, ds := range []string{m.Source, m.Target} {
			out = append(out, sliceRef{ds, tcp.Status.Storage.Setup.Schema, tcp.Status.Storage.Setup.User})
		}
	}
	for _, o := range tcp.Status.Storage.Overrides {
		out = append(out, sliceRef{o.DataStoreName, o.Schema, o.User})
	}
	return out
}

func unique(in []string) []string {
	var out []string
	for _, s := range in {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
