package webhooks

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// ruleDataStoreOverrides: each resource is overridden once, and to an existing etcd DataStore,
// since kube-apiserver's --etcd-servers-overrides only speaks etcd.
func ruleDataStoreOverrides(ctx context.Context, rc *tcpRuleContext) field.ErrorList {
	path := field.NewPath("spec", "dataStoreOverrides")
	var errs field.ErrorList
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
