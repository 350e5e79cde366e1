package datastore

import (
	"context"
	"errors"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/sdk"
	sdkdatastore "github.com/openhcp/kamaji/sdk/datastore"
)

// UsageInterval is how often a DataStore's driver is asked what its tenants store: one
// GetUsage per DataStore for all its tenants, not one per reconcile of each TCP.
const UsageInterval = 5 * time.Minute

// UsageFieldManager owns status.storage.usage on TCPs: the TCP controller declares the rest of
// their status and must neither take nor drop this field.
const UsageFieldManager = "kamaji-usage"

// refreshUsage asks the driver for the usage of every tenant whose data is on ds, when the last
// report is older than the interval, writes each TCP's share into its status and returns the
// sum for the DataStore's. It returns the last report unchanged when it is fresh, the driver
// lacks the USAGE capability, or the call failed (logged: usage must not fail a DataStore).
func (r *Reconciler) refreshUsage(ctx context.Context, ds *kamajiv1alpha1.DataStore, cfg sdkdatastore.Config, plugin *sdkdatastore.Client) *kamajiv1alpha1.DataStoreUsage {
	last := ds.Status.Usage
	interval := r.UsageInterval
	if interval == 0 {
		interval = UsageInterval
	}
	now := r.now()
	if last != nil && now.Sub(last.LastUpdate.Time) < interval {
		return last
	}
	cctx, cancel := r.callContext(ctx)
	defer cancel()
	caps, err := plugin.Capabilities(cctx)
	if err != nil || !slices.Contains(caps, sdkdatastore.CapabilityUsage) {
		return last
	}
	var list kamajiv1alpha1.TenantControlPlaneList
	if err := r.Client.List(ctx, &list); err != nil {
		return last
	}
	var tcps []*kamajiv1alpha1.TenantControlPlane
	var tenants []sdkdatastore.Tenant
	for i := range list.Items {
		tcp := &list.Items[i]
		if st := tcp.Status.Storage; st.DataStoreName == ds.Name && st.Setup.Schema != "" {
			tcps = append(tcps, tcp)
			tenants = append(tenants, sdkdatastore.Tenant{Namespace: tcp.Namespace, Name: tcp.Name, Schema: st.Setup.Schema, Username: st.Setup.User, UID: string(tcp.UID)})
		}
	}
	sum := &kamajiv1alpha1.DataStoreUsage{StorageUsage: kamajiv1alpha1.StorageUsage{LastUpdate: metav1.NewTime(now)}}
	if len(tenants) > 0 {
		report, err := plugin.GetUsage(cctx, cfg, tenants)
		if err != nil {
			if !errors.Is(err, sdk.ErrUnimplemented) {
				log.FromContext(ctx).Info("datastore usage not refreshed", "error", err.Error())
			}
			return last
		}
		var bytes, keys int64
		bytesKnown, keysKnown := true, true
		for _, tu := range report.Tenants {
			i := slices.IndexFunc(tcps, func(t *kamajiv1alpha1.TenantControlPlane) bool {
				return t.Namespace == tu.Tenant.Namespace && t.Name == tu.Tenant.Name
			})
			if i < 0 {
				continue
			}
			u := known(tu.Usage, now)
			if u.Bytes != nil {
				bytes += *u.Bytes
			} else {
				bytesKnown = false
			}
			if u.Keys != nil {
				keys += *u.Keys
			} else {
				keysKnown = false
			}
			sum.Tenants++
			if err := apply.ApplyStatusFields(ctx, r.Client, tcps[i], UsageFieldManager, map[string]any{
				"storage": map[string]any{"usage": usageFields(u)},
			}); err != nil && !apierrors.IsNotFound(err) {
				log.FromContext(ctx).Info("tenant usage not written", "tenant", tcps[i].Namespace+"/"+tcps[i].Name, "error", err.Error())
			}
		}
		if bytesKnown {
			sum.Bytes = &bytes
		}
		if keysKnown {
			sum.Keys = &keys
		}
	}
	return sum
}

// known drops the -1 ("unknown") of the contract.
func known(u sdkdatastore.Usage, at time.Time) kamajiv1alpha1.StorageUsage {
	out := kamajiv1alpha1.StorageUsage{LastUpdate: metav1.NewTime(at)}
	if u.Bytes >= 0 {
		out.Bytes = &u.Bytes
	}
	if u.Keys >= 0 {
		out.Keys = &u.Keys
	}
	return out
}

func usageFields(u kamajiv1alpha1.StorageUsage) map[string]any {
	m := map[string]any{"lastUpdate": u.LastUpdate.UTC().Format(time.RFC3339)}
	if u.Bytes != nil {
		m["bytes"] = *u.Bytes
	}
	if u.Keys != nil {
		m["keys"] = *u.Keys
	}
	return m
}
