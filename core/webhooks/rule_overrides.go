package webhooks

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// ruleDataStoreOverrides: each resource is overridden once, and to an existing etcd DataStore,
// since kube-apiserver's --etcd-servers-overrides only speaks etcd, with the main DataStore's
// client certificate (so the main one is etcd too); and the overrides never change after
// creation.
func ruleDataStoreOverrides(ctx context.Context, rc *tcpRuleContext) field.ErrorList {
	path := field.NewPath("spec", "dataStoreOverrides")
	if rc.Old != nil {
		if !equality.Semantic.DeepEqual(rc.Old.Spec.DataStoreOverrides, rc.New.Spec.DataStoreOverrides) {
			// Moving a resource between DataStores would leave its objects behind.
			return field.ErrorList{field.Forbidden(path, "cannot change once the TenantControlPlane exists: the overridden resources' data would stay on the old DataStore")}
		}
		return nil
	}
	if len(rc.New.Spec.DataStoreOverrides) == 0 {
		return nil
	}
	var errs field.ErrorList
	main := &kamajiv1alpha1.DataStore{}
	if err := rc.Reader.Get(ctx, client.ObjectKey{Name: rc.New.Spec.DataStore}, main); err == nil && main.Spec.Driver != kamajiv1alpha1.DriverEtcd {
		errs = append(errs, field.Invalid(path, len(rc.New.Spec.DataStoreOverrides), fmt.Sprintf(
			"overrides need an etcd main DataStore (kube-apiserver's overrides share its etcd client certificate); %s uses %s", main.Name, main.Spec.Driver)))
	}
	seen := map[string]bool{}
	for i, o := range rc.New.Spec.DataStoreOverrides {
		p := path.Index(i)
		if seen[o.Resource] {
			errs = append(errs, field.Duplicate(p.Child("resource"), o.Resource))
			continue
		}
		seen[o.Resource] = true
		if fe := checkDataStore(ctx, rc.Reader, rc.Opts.Drivers, p.Child("dataStore"), o.DataStore); len(fe) > 0 {
			errs = append(errs, fe...)
			continue
		}
		ds := &kamajiv1alpha1.DataStore{}
		if err := rc.Reader.Get(ctx, client.ObjectKey{Name: o.DataStore}, ds); err == nil && ds.Spec.Driver != kamajiv1alpha1.DriverEtcd {
			errs = append(errs, field.Invalid(p.Child("dataStore"), o.DataStore, fmt.Sprintf("overrides must use an etcd DataStore, %s uses %s", o.DataStore, ds.Spec.Driver)))
		}
	}
	return errs
}
