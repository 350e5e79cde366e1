// Package datastore reconciles DataStore objects: it resolves their Secret references, starts
// and checks the plugin serving their driver, validates the configuration through it, and keeps
// status.usedBy and the conditions current.
package datastore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/cachestore"
	"github.com/openhcp/kamaji/core/conditionevents"
	"github.com/openhcp/kamaji/core/datastores"
	"github.com/openhcp/kamaji/core/pluginhost"
	"github.com/openhcp/kamaji/sdk"
	sdkdatastore "github.com/openhcp/kamaji/sdk/datastore"
)

// Condition types and reasons of a DataStore.
const (
	ConditionReady       = "Ready"
	ConditionPluginReady = "PluginReady"
	ConditionConfigValid = "ConfigValid"

	ReasonPluginRunning  = "PluginRunning"
	ReasonConfigValid    = "ConfigValid"
	ReasonConfigInvalid  = "ConfigInvalid"
	ReasonUnreachable    = "DataStoreUnreachable"
	ReasonSecretMissing  = "SecretMissing"
	ReasonReady          = "Ready"
	ReasonNotReady       = "NotReady"
	ReasonPluginNotReady = "PluginNotReady"
)

// Recheck is how often a DataStore is re-validated: a changed referenced Secret, a datastore
// gone unreachable or a plugin that died are seen within it. (Secrets are not watched: the core
// caches only the Secrets it owns.) A missing Secret is looked for again sooner.
const (
	Recheck              = 30 * time.Second
	RecheckMissingSecret = 5 * time.Second
)

// workers is how many DataStores are reconciled at once: a pass on an unreachable datastore
// waits its plugin calls' timeout, and the others must not queue behind it.
const workers = 4

// Plugins gives the running plugin of a driver.
type Plugins interface {
	DataStore(ctx context.Context, driver string) (*sdkdatastore.Client, pluginhost.Status, error)
}

// Reconciler reconciles DataStores.
type Reconciler struct {
	Client     client.Client
	Plugins    Plugins
	DataStores *datastores.Cache
	Now        func() time.Time
	// CallTimeout bounds each plugin call made here.
	CallTimeout time.Duration
	// Usage: how often the tenants' usage is counted, within what limits per pass (zero
	// fields: DefaultUsagePolicy's).
	Usage UsagePolicy
	// Recheck overrides how often a DataStore is re-validated (default Recheck).
	Recheck time.Duration
	// Recorder records an Event on the DataStore for each condition transition; nil records none.
	Recorder events.EventRecorder
	// recorded holds the conditions last recorded per DataStore: the DataStore is read from the
	// cache, which may not have seen the previous pass's status yet.
	recorded conditionevents.Memo
	// usageAsked: when each tenant's usage was last asked for (usage.go).
	usageAsked usageAsked
	// cache is the manager's, whose TCPs each pass reads in place (set by SetupWithManager).
	cache cache.Informers
}

// SetupWithManager watches DataStores, and TCPs only to keep usedBy current: a TCP event
// enqueues its own DataStore, never every TCP of a DataStore.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.cache = mgr.GetCache()
	toDataStore := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		tcp, ok := obj.(*kamajiv1alpha1.TenantControlPlane)
		if !ok {
			return nil
		}
		var reqs []reconcile.Request
		for _, name := range tcp.DataStoreNames() {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: name}})
		}
		return reqs
	})
	usageChanged := predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*kamajiv1alpha1.TenantControlPlane), e.ObjectNew.(*kamajiv1alpha1.TenantControlPlane)
			return !slices.Equal(o.DataStoreNames(), n.DataStoreNames())
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("datastore").
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		For(&kamajiv1alpha1.DataStore{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&kamajiv1alpha1.TenantControlPlane{}, toDataStore, builder.WithPredicates(usageChanged)).
		Complete(r)
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile refreshes one DataStore's status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ds := &kamajiv1alpha1.DataStore{}
	if err := r.Client.Get(ctx, req.NamespacedName, ds); err != nil {
		r.DataStores.Forget(req.Name)
		if client.IgnoreNotFound(err) == nil {
			r.recorded.Forget(req.Name)
			r.usageAsked.forget(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if _, paused := ds.Annotations[kamajiv1alpha1.PausedAnnotation]; paused {
		return ctrl.Result{}, nil
	}
	status := *ds.Status.DeepCopy()
	set := func(t string, s metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{
			Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: ds.Generation, LastTransitionTime: metav1.NewTime(r.now()),
		})
	}

	// The TCPs are read in place, once per pass, for usedBy and the usage count: a list would
	// copy every one of them (at 1,000 TCPs, 7 MB twice per pass of each DataStore).
	tcps, err := cachestore.List[kamajiv1alpha1.TenantControlPlane](ctx, r.cache)
	if err != nil {
		return ctrl.Result{}, err
	}
	status.UsedBy = usedBy(tcps, ds.Name)
	requeue := Recheck
	if r.Recheck > 0 {
		requeue = r.Recheck
	}

	// Re-resolve every time: this is how a changed Secret reaches the TCP reconciles.
	r.DataStores.Forget(ds.Name)
	cfg, cfgErr := r.DataStores.Get(ctx, ds)
	plugin, ps, plugErr := r.Plugins.DataStore(ctx, ds.Spec.Driver)
	switch {
	case plugErr != nil:
		reason := pluginhost.ReasonHandshakeFailed
		if pe, ok := pluginhost.AsError(plugErr); ok {
			reason = pe.Reason
			if pe.RetryAfter > 0 {
				requeue = pe.RetryAfter
			}
		}
		set(ConditionPluginReady, metav1.ConditionFalse, reason, plugErr.Error())
	default:
		status.Plugin = &kamajiv1alpha1.PluginStatus{Name: ps.Name, Version: ps.Version, Protocol: int32(ps.Protocol)}
		pctx, cancel := r.callContext(ctx)
		probe, err := plugin.Probe(pctx)
		cancel()
		switch {
		case err != nil:
			// A failing probe means "restart me": the host's own probe loop kills the process
			// (a graceful Close here could block forever on a frozen one).
			set(ConditionPluginReady, metav1.ConditionFalse, pluginhost.ReasonRestarting, "probe failed: "+err.Error())
			requeue = time.Second
		case !probe.Ready:
			set(ConditionPluginReady, metav1.ConditionFalse, ReasonPluginNotReady, probe.Message)
		default:
			set(ConditionPluginReady, metav1.ConditionTrue, ReasonPluginRunning,
				fmt.Sprintf("%s %s (protocol %d)", ps.Name, ps.Version, ps.Protocol))
		}
	}

	switch {
	case cfgErr != nil:
		set(ConditionConfigValid, metav1.ConditionFalse, ReasonSecretMissing, cfgErr.Error())
		requeue = min(requeue, RecheckMissingSecret)
	case plugErr != nil:
		// Cannot validate without the plugin; keep the last verdict.
	default:
		vctx, cancel := r.callContext(ctx)
		err := plugin.ValidateConfig(vctx, cfg)
		cancel()
		var fe *sdk.FieldError
		switch {
		case errors.As(err, &fe):
			set(ConditionConfigValid, metav1.ConditionFalse, ReasonConfigInvalid, err.Error())
		case err != nil:
			set(ConditionConfigValid, metav1.ConditionFalse, ReasonUnreachable, err.Error())
		default:
			set(ConditionConfigValid, metav1.ConditionTrue, ReasonConfigValid, "the plugin validated the configuration and reached the datastore")
		}
	}

	if meta.IsStatusConditionTrue(status.Conditions, ConditionPluginReady) && meta.IsStatusConditionTrue(status.Conditions, ConditionConfigValid) {
		status.Usage = r.refreshUsage(ctx, ds, cfg, plugin, tcps)
		set(ConditionReady, metav1.ConditionTrue, ReasonReady, "ready to host tenants")
	} else {
		msg := "see the PluginReady and ConfigValid conditions"
		for _, t := range []string{ConditionPluginReady, ConditionConfigValid} {
			if c := meta.FindStatusCondition(status.Conditions, t); c != nil && c.Status != metav1.ConditionTrue {
				msg = c.Message
				break
			}
		}
		set(ConditionReady, metav1.ConditionFalse, ReasonNotReady, msg)
	}
	status.Ready = meta.IsStatusConditionTrue(status.Conditions, ConditionReady) // Kamaji's printer column
	status.ObservedGeneration = ds.Generation
	if !equality.Semantic.DeepEqual(status, ds.Status) {
		obj := &kamajiv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Name: ds.Name}, Status: status}
		if err := apply.ApplyStatus(ctx, r.Client, obj); err != nil {
			return ctrl.Result{}, err
		}
	}
	r.recordTransitions(ds, status.Conditions)
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// recordTransitions records one Event per condition that changed since the last recorded
// (or, the first time, since the status read); a DataStore at rest records nothing.
func (r *Reconciler) recordTransitions(ds *kamajiv1alpha1.DataStore, now []metav1.Condition) {
	if r.Recorder == nil {
		return
	}
	before := r.recorded.Before(ds.Name, ds.Status.Conditions)
	conditionevents.Record(r.Recorder, ds, before, now, func(reason string) bool { return reason == pluginhost.ReasonStarting })
	r.recorded.Remember(ds.Name, now)
}

func (r *Reconciler) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	t := r.CallTimeout
	if t == 0 {
		t = 10 * time.Second
	}
	return context.WithTimeout(ctx, t)
}

// usedBy names the TCPs that keep a slice on the DataStore, sorted.
func usedBy(tcps []*kamajiv1alpha1.TenantControlPlane, name string) []string {
	var users []string
	for _, tcp := range tcps {
		if slices.Contains(tcp.DataStoreNames(), name) {
			users = append(users, tcp.Namespace+"/"+tcp.Name)
		}
	}
	slices.Sort(users)
	return users
}
