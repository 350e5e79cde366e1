package tenantcontrolplane

import (
	"context"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/cachestore"
)

// dataStoreUsers lists the TCPs that keep a slice on the DataStore, as main or override, by
// spec or by status (read in place from the cache: a DataStore may hold 1,000 TCPs): those for
// which which is true (nil: all of them).
func (r *Reconciler) dataStoreUsers(ctx context.Context, name string, which func(*kamajiv1alpha1.TenantControlPlane) bool) []types.NamespacedName {
	tcps, err := cachestore.List[kamajiv1alpha1.TenantControlPlane](ctx, r.cache)
	if err != nil {
		log.FromContext(ctx).Error(err, "listing the TenantControlPlanes of a changed DataStore", "dataStore", name)
		return nil
	}
	var out []types.NamespacedName
	for _, tcp := range tcps {
		if slices.Contains(tcp.DataStoreNames(), name) && (which == nil || which(tcp)) {
			out = append(out, client.ObjectKeyFromObject(tcp))
		}
	}
	return out
}

func enqueue(q workqueue.TypedRateLimitingInterface[reconcile.Request], keys []types.NamespacedName) {
	for _, key := range keys {
		q.Add(reconcile.Request{NamespacedName: key})
	}
}

// dataStoreUpdateReaches says which of a DataStore's TCPs an update of it concerns: all of them
// when its spec changed (they were provisioned from the former one), those waiting for it when
// it turned Ready; none otherwise (ok false).
func dataStoreUpdateReaches(oldObj, newObj client.Object) (which func(*kamajiv1alpha1.TenantControlPlane) bool, ok bool) {
	o, ok1 := oldObj.(*kamajiv1alpha1.DataStore)
	n, ok2 := newObj.(*kamajiv1alpha1.DataStore)
	switch {
	case !ok1 || !ok2:
		return nil, false
	case o.Generation != n.Generation:
		return nil, true
	case !meta.IsStatusConditionTrue(o.Status.Conditions, kamajiv1alpha1.ConditionReady) &&
		meta.IsStatusConditionTrue(n.Status.Conditions, kamajiv1alpha1.ConditionReady):
		return waitsForDataStore, true
	}
	return nil, false
}

// waitsForDataStore: the TCP's datastore steps did not all succeed in its last pass (or it has
// had none yet), or it is migrating; a DataStore turning Ready may let it go on.
func waitsForDataStore(tcp *kamajiv1alpha1.TenantControlPlane) bool {
	return tcp.Status.Storage.Migration != nil ||
		!meta.IsStatusConditionTrue(tcp.Status.Conditions, kamajiv1alpha1.ConditionDataStoreReady)
}
