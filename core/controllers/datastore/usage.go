package datastore

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/sdk"
	sdkdatastore "github.com/openhcp/kamaji/sdk/datastore"
)

// UsageFieldManager owns status.storage.usage on TCPs: the TCP controller declares the rest of
// their status and must neither take nor drop this field.
const UsageFieldManager = "kamaji-usage"

// refreshUsage asks the driver for the usage of the tenants on ds (among all, the cached TCPs)
// that are due a report (see usageBatches: about every r.Usage.Interval, within the limits of
// one pass), writes each TCP's share into its status when it changed (or hourly, see
// usageNews) and returns the sum over all its tenants' last reports for the DataStore's. A
// failed call is logged (usage must not fail a DataStore) and its tenants wait behind the
// others; the sum is the last one when the driver lacks the USAGE capability.
func (r *Reconciler) refreshUsage(ctx context.Context, ds *kamajiv1alpha1.DataStore, cfg sdkdatastore.Config, plugin *sdkdatastore.Client, all []*kamajiv1alpha1.TenantControlPlane) *kamajiv1alpha1.DataStoreUsage {
	now := r.now()
	var tcps []*kamajiv1alpha1.TenantControlPlane
	for _, tcp := range all { // the cache's own objects: read only
		if st := tcp.Status.Storage; st.DataStoreName == ds.Name && st.Setup.Schema != "" {
			tcps = append(tcps, tcp)
		}
	}
	asked := r.usageAsked.forDataStore(ds.Name, tcps)
	cands := make([]usageCandidate, len(tcps))
	for i, tcp := range tcps {
		rec := asked[tcp.UID]
		cands[i] = usageCandidate{last: rec.asked, keys: -1, asleep: rec.asleep && asleep(tcp)}
		if u := tcp.Status.Storage.Usage; u != nil {
			if u.LastUpdate.After(cands[i].last) {
				cands[i].last = u.LastUpdate.Time
			}
			if u.Keys != nil {
				cands[i].keys = *u.Keys
			}
		}
	}
	policy := r.Usage.withDefaults()
	limit := policy.BatchKeys
	policy.BatchKeys = r.usageAsked.budget(ds.Name, limit)
	batches := usageBatches(cands, now, policy)
	if len(batches) == 0 {
		return sumUsage(ds.Status.Usage, tcps, nil)
	}
	cctx, cancel := r.callContext(ctx)
	caps, err := plugin.Capabilities(cctx)
	cancel()
	if err != nil || !slices.Contains(caps, sdkdatastore.CapabilityUsage) {
		return ds.Status.Usage
	}
	fresh := map[int]kamajiv1alpha1.StorageUsage{}
	for _, batch := range batches {
		tenants := make([]sdkdatastore.Tenant, len(batch))
		for j, i := range batch {
			tcp := tcps[i]
			st := tcp.Status.Storage.Setup
			tenants[j] = sdkdatastore.Tenant{Namespace: tcp.Namespace, Name: tcp.Name, Schema: st.Schema, Username: st.User, UID: string(tcp.UID)}
			r.usageAsked.record(ds.Name, tcp.UID, now)
		}
		cctx, cancel := r.callContext(ctx)
		report, err := plugin.GetUsage(cctx, cfg, tenants)
		cancel()
		if err != nil {
			if !errors.Is(err, sdk.ErrUnimplemented) {
				log.FromContext(ctx).Info("datastore usage not refreshed", "tenants", len(tenants), "error", err.Error())
			}
			r.usageAsked.failed(ds.Name, limit)
			break
		}
		r.usageAsked.succeeded(ds.Name, limit)
		for _, tu := range report.Tenants {
			j := slices.IndexFunc(tenants, func(t sdkdatastore.Tenant) bool {
				return t.Namespace == tu.Tenant.Namespace && t.Name == tu.Tenant.Name
			})
			if j < 0 {
				continue
			}
			u := known(tu.Usage, now)
			tcp := tcps[batch[j]]
			r.usageAsked.counted(ds.Name, tcp.UID, asleep(tcp))
			if !usageNews(tcp.Status.Storage.Usage, u, policy.Rewrite) {
				continue
			}
			fresh[batch[j]] = u
			if err := apply.ApplyStatusFields(ctx, r.Client, tcp, UsageFieldManager, map[string]any{
				"storage": map[string]any{"usage": usageFields(u)},
			}); err != nil && !apierrors.IsNotFound(err) {
				log.FromContext(ctx).Info("tenant usage not written", "tenant", tcp.Namespace+"/"+tcp.Name, "error", err.Error())
			}
		}
	}
	return sumUsage(ds.Status.Usage, tcps, fresh)
}

// usageNews tells whether a count is worth writing over the status's last one: its figures
// differ, or the last one is at least rewrite old.
func usageNews(last *kamajiv1alpha1.StorageUsage, u kamajiv1alpha1.StorageUsage, rewrite time.Duration) bool {
	return last == nil || !ptr.Equal(last.Bytes, u.Bytes) || !ptr.Equal(last.Keys, u.Keys) ||
		u.LastUpdate.Sub(last.LastUpdate.Time) >= rewrite
}

// sumUsage adds up the last report of each tenant (fresh, by index into tcps, over what their
// status says): bytes and keys when every reported tenant has them, dated by the newest
// report; nil until a tenant has been counted.
func sumUsage(last *kamajiv1alpha1.DataStoreUsage, tcps []*kamajiv1alpha1.TenantControlPlane, fresh map[int]kamajiv1alpha1.StorageUsage) *kamajiv1alpha1.DataStoreUsage {
	sum := &kamajiv1alpha1.DataStoreUsage{}
	var bytes, keys int64
	bytesKnown, keysKnown := true, true
	for i, tcp := range tcps {
		u, ok := fresh[i]
		if !ok {
			if tcp.Status.Storage.Usage == nil {
				continue
			}
			u = *tcp.Status.Storage.Usage
		}
		sum.Tenants++
		if u.LastUpdate.After(sum.LastUpdate.Time) {
			sum.LastUpdate = u.LastUpdate
		}
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
	}
	if sum.Tenants == 0 {
		if last == nil {
			return nil
		}
		// Its tenants are gone, or not counted yet: nothing stored by them is known.
		var zero int64
		return &kamajiv1alpha1.DataStoreUsage{StorageUsage: kamajiv1alpha1.StorageUsage{Bytes: &zero, Keys: &zero, LastUpdate: last.LastUpdate}}
	}
	if bytesKnown {
		sum.Bytes = &bytes
	}
	if keysKnown {
		sum.Keys = &keys
	}
	// Written as RFC 3339 (seconds): compared at that precision, a sum read back is not news.
	sum.LastUpdate = metav1.NewTime(sum.LastUpdate.Truncate(time.Second))
	return sum
}

// asleep tells whether the tenant's control plane runs no pod: asleep, or scaled to zero.
func asleep(tcp *kamajiv1alpha1.TenantControlPlane) bool {
	st := tcp.Status.Kubernetes.Version.Status
	return st != nil && *st == kamajiv1alpha1.VersionSleeping
}

// usageAsked remembers, per DataStore, when each tenant was last asked for (the status says
// only when it was last reported), so that a tenant whose call failed waits behind the others,
// whether it slept at its last count, and the keys a call may ask for: halved after a failed
// call (a driver slower than the etcd one's figures, or a datastore under load, then still
// counts, in smaller calls), doubled back after each call that answers.
type usageAsked struct {
	mu   sync.Mutex
	at   map[string]map[types.UID]askedRecord
	keys map[string]int64
}

// budget is the keys a call of the DataStore may ask for, at most limit.
func (a *usageAsked) budget(ds string, limit int64) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if k, ok := a.keys[ds]; ok && k < limit {
		return k
	}
	return limit
}

func (a *usageAsked) failed(ds string, limit int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.init()
	k, ok := a.keys[ds]
	if !ok || k > limit {
		k = limit
	}
	a.keys[ds] = max(k/2, 1)
}

func (a *usageAsked) succeeded(ds string, limit int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if k, ok := a.keys[ds]; ok {
		if k*2 >= limit {
			delete(a.keys, ds)
		} else {
			a.keys[ds] = k * 2
		}
	}
}

// init makes the maps of a zero usageAsked (a.mu held).
func (a *usageAsked) init() {
	if a.at == nil {
		a.at, a.keys = map[string]map[types.UID]askedRecord{}, map[string]int64{}
	}
}

type askedRecord struct {
	asked  time.Time
	asleep bool
}

// forDataStore returns the DataStore's record, kept to its current tenants.
func (a *usageAsked) forDataStore(ds string, tcps []*kamajiv1alpha1.TenantControlPlane) map[types.UID]askedRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.init()
	out := map[types.UID]askedRecord{}
	for _, tcp := range tcps {
		if rec, ok := a.at[ds][tcp.UID]; ok {
			out[tcp.UID] = rec
		}
	}
	a.at[ds] = out
	return maps.Clone(out)
}

func (a *usageAsked) forget(ds string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.at, ds)
	delete(a.keys, ds)
}

// record notes that the tenant is being asked for now.
func (a *usageAsked) record(ds string, uid types.UID, at time.Time) {
	a.update(ds, uid, func(r *askedRecord) { r.asked = at })
}

// counted notes whether the tenant slept when its count came back.
func (a *usageAsked) counted(ds string, uid types.UID, asleep bool) {
	a.update(ds, uid, func(r *askedRecord) { r.asleep = asleep })
}

func (a *usageAsked) update(ds string, uid types.UID, f func(*askedRecord)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.init()
	if a.at[ds] == nil {
		a.at[ds] = map[types.UID]askedRecord{}
	}
	rec := a.at[ds][uid]
	f(&rec)
	a.at[ds][uid] = rec
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
