// Package tenantcontrolplane reconciles a TenantControlPlane into everything its control plane
// needs in the admin cluster, as an ordered list of small idempotent steps (one file each):
// datastore slice → Service → Ingress/TLSRoute → PKI → kubeconfigs → addon renders (files,
// Service ports, konnectivity Secrets) → Deployment. Then, once a control-plane replica is
// available, inside the tenant cluster: kubeadm's phases, then the addons. Every write is a
// server-side apply; the status is applied once per pass, at the end.
package tenantcontrolplane

import (
	"context"
	"errors"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/cachestore"
	"github.com/openhcp/kamaji/core/datastores"
	"github.com/openhcp/kamaji/core/pluginhost"
	"github.com/openhcp/kamaji/core/secretdata"
	"github.com/openhcp/kamaji/core/sleep"
	"github.com/openhcp/kamaji/core/startqueue"
	"github.com/openhcp/kamaji/core/tenant"
	"github.com/openhcp/kamaji/core/tenant/writeblock"
	"github.com/openhcp/kamaji/sdk/addon"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// +kubebuilder:rbac:groups="",resources=secrets;services;configmaps,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=tlsroutes,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create
// +kubebuilder:rbac:groups="",resources=pods,verbs=list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch

// Finalizer guards the deprovisioning of the TCP's datastore slice.
const Finalizer = "kamaji.clastix.io/finalizer"

// Plugins gives the running plugin of a datastore driver or of an addon.
type Plugins interface {
	DataStore(ctx context.Context, driver string) (*datastore.Client, pluginhost.Status, error)
	Addon(ctx context.Context, addon string) (*addon.Client, pluginhost.Status, error)
}

// Reconciler reconciles TenantControlPlanes.
type Reconciler struct {
	Client    client.Client
	APIReader client.Reader
	Plugins   Plugins
	// DataStoreProvisioner overrides Plugins for the provisioning calls (tests, benchmarks).
	DataStores *datastores.Cache
	// Tenants gives the clients of the tenant clusters; without it the tenant is not
	// configured (no kubeadm phases, no addons applied).
	Tenants *tenant.Clients
	// Recorder records Events on TCPs and DataStores; nil records none.
	Recorder events.EventRecorder
	// Starts admits control-plane starts a few at a time; nil: every start goes ahead at once.
	Starts  *startqueue.Queue
	Options Options
	Now     func() time.Time

	// writes: our Secret writes the cache has yet to show (readSecret).
	writes secretWrites
	// ensured: the datastore slices ensured recently, for the same inputs (provision).
	ensured ensuredSlices
	// wakePorts: the sleeping TCPs' ports on the manager pods.
	wakePorts wakePorts
	// data: the data of our Secrets read or written lately (the cache keeps none; secrets.go).
	data     *secretdata.Reader
	dataOnce sync.Once
	// cache is the manager's, read in place where a list would copy every TCP (set by
	// SetupWithManager).
	cache cache.Informers
}

// event records an Event regarding obj; note is a message, not a format.
func (r *Reconciler) event(obj runtime.Object, eventType, reason, action, note string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(obj, nil, eventType, reason, action, "%s", note)
	}
}

// Options are the manager settings the steps use.
type Options struct {
	MaxConcurrentReconciles       int
	ReconcileTimeout              time.Duration
	CertificateExpirationDeadline time.Duration
	// CARotationOverlap: how long the previous CA stays trusted after a CA rotation (0:
	// DefaultCARotationOverlap).
	CARotationOverlap time.Duration
	KineImage         string
	// DataStoreVerifyInterval: how long a successful EnsureTenant is trusted while its inputs do
	// not change (0: DefaultDataStoreVerifyInterval).
	DataStoreVerifyInterval time.Duration
	// TenantWebhook locates the manager's webhook as tenant apiservers reach it, for the write
	// freeze of a migration and spec.writePermissions (core/tenant/writeblock); nil, or an
	// error, and neither can be put in place: the TCP's condition says why.
	TenantWebhook func() (writeblock.Webhook, error)
	// WakeService is the manager's Service whose ready endpoints hold a sleeping TCP's
	// connections (the webhook Service: every manager pod runs the wake server); its
	// EndpointSlices must be in the cache. Empty: no TCP sleeps.
	WakeService types.NamespacedName
	// ManagerNamespace is where the manager runs (TCPs there cannot sleep: see canSleep).
	ManagerNamespace string
	// WakePortBase and WakePortCount: the manager pods' ports for sleeping TCPs
	// (DefaultWakePortBase, DefaultWakePortCount when zero).
	WakePortBase, WakePortCount int32
}

// tenantWebhook is Options.TenantWebhook's answer, or why there is none.
func (r *Reconciler) tenantWebhook() (writeblock.Webhook, error) {
	if r.Options.TenantWebhook == nil {
		return writeblock.Webhook{}, errors.New("the manager has no webhook for tenant apiservers to call (manager setting tenant-webhook-url)")
	}
	return r.Options.TenantWebhook()
}

type step struct {
	name string
	run  func(ctx context.Context, r *Reconciler, p *pass) error
}

// steps run in order; a failing step stops the pass (later steps depend on it), except a
// datastore step outside a migration (see runSteps). The rotation request comes first so that
// every step sees it on the Secrets it keeps. The Service comes before the PKI because the
// apiserver certificate's SANs and the admin kubeconfig's server need the address the Service
// gives the tenant.
var steps = []step{
	{"rotation-request", stepRotationRequest},
	{"sleep", stepSleep},
	{"datastore", stepDataStore},
	{"datastore-overrides", stepDataStoreOverrides},
	{"service", stepService},
	{"exposure", stepExposure},
	{"pki", stepPKI},
	{"kubeconfigs", stepKubeconfigs},
	{"addon-render", stepAddonRender},
	{"activity-audit", stepActivityAudit},
	{"addon-files", stepAddonFiles},
	{"addon-service", stepAddonService},
	{"konnectivity", stepKonnectivity},
	{"deployment", stepDeployment},
	{"wake", stepWake},
	{"migration-after-rollout", stepMigrationAfterRollout},
}

// dataStoreSteps talk to the datastore or need what it answered (see runSteps).
var dataStoreSteps = map[string]bool{"datastore": true, "datastore-overrides": true, "migration-after-rollout": true}

// runSteps runs the admin-side steps and returns their errors. A failing step stops the pass,
// except a datastore step while no migration is under way: an unreachable datastore (or
// plugin) then blocks only the steps that need it, and the certificates, kubeconfigs and the
// Deployment still converge, the Deployment on the storage it was last built with
// (deploymentStorage). A migration keeps its order: its failing phase stops the pass.
func (r *Reconciler) runSteps(ctx context.Context, p *pass) []error {
	var errs []error
	withoutDataStore := false
	for _, s := range steps {
		if withoutDataStore && dataStoreSteps[s.name] {
			continue
		}
		err := r.runStep(ctx, s, p)
		if err == nil {
			continue
		}
		log.FromContext(ctx).Info("step did not complete", "step", s.name, "error", err.Error())
		errs = append(errs, err)
		if !dataStoreSteps[s.name] || migrating(p.status.Storage) {
			break
		}
		withoutDataStore = true
		// What the failed step may have half given is not used: the Deployment keeps its storage.
		p.conn, p.overrideServers, p.storageSecret = datastore.Connection{}, nil, ""
	}
	return errs
}

// SetupWithManager registers the controller. It watches only what it owns: our Deployments,
// Services, Secrets and ConfigMaps (the cache is label-restricted to them), and in the tenant
// clusters the objects it applied (the tenant package's label-selected watches enqueue the TCP).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.cache = mgr.GetCache()
	workers := r.Options.MaxConcurrentReconciles
	if workers < 1 {
		workers = 1
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("tenantcontrolplane").
		For(&kamajiv1alpha1.TenantControlPlane{}, builder.WithPredicates(notUsageOnly)).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.Secret{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&networkingv1.Ingress{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers})
	// A DataStore's TCPs are enqueued when it is created or its spec changes, and those waiting
	// for it (absent, with a missing Secret, unreachable) when it turns Ready: not polled. It
	// turning not Ready enqueues none (a pass does not read it), nor do its status refreshes, so
	// a DataStore's blip does not cost a pass of each of its thousand tenants.
	b = b.Watches(&kamajiv1alpha1.DataStore{}, handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, r.dataStoreUsers(ctx, e.Object.GetName(), nil))
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if which, ok := dataStoreUpdateReaches(e.ObjectOld, e.ObjectNew); ok {
				enqueue(q, r.dataStoreUsers(ctx, e.ObjectNew.GetName(), which))
			}
		},
	})
	// A TCP is enqueued when one of its control-plane pods gets into trouble (an image that
	// cannot be pulled, a crash loop, no node to run on) or out of it: its status says why it
	// waits. The Deployment's status does not change for any of these.
	b = b.Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		if name := obj.GetLabels()[kamajiv1alpha1.NameLabel]; name != "" {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
		}
		return nil
	}), builder.WithPredicates(podTroubleChanged))
	// A TCP that may sleep is enqueued when its activity Lease is written (a request woke it),
	// when its wake EndpointSlice changes, and, while it sleeps or wakes, when the manager pods
	// that hold its connections change (the webhook Service's EndpointSlices).
	b = b.Watches(&coordinationv1.Lease{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		if name := obj.GetLabels()[sleep.ActivityLabel]; name != "" {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
		}
		return nil
	}))
	b = b.Watches(&discoveryv1.EndpointSlice{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		if name := obj.GetLabels()[sleep.WakeLabel]; name != "" {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
		}
		if obj.GetNamespace() != r.Options.WakeService.Namespace || obj.GetLabels()[discoveryv1.LabelServiceName] != r.Options.WakeService.Name {
			return nil
		}
		return r.sleepingTCPs(ctx)
	}))
	if r.Tenants != nil {
		b = b.WatchesRawSource(source.Func(func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			r.Tenants.SetNotify(func(key types.NamespacedName) { q.Add(reconcile.Request{NamespacedName: key}) })
			go func() {
				<-ctx.Done()
				r.Tenants.Close()
			}()
			return nil
		}))
	}
	if r.Starts != nil {
		// A waiting start is enqueued when a slot frees (a start became available, or a TCP
		// left), not polled.
		b = b.WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			r.Starts.SetNotify(func(key types.NamespacedName) { q.Add(reconcile.Request{NamespacedName: key}) })
			return nil
		}))
	}
	if r.DataStores != nil {
		// A DataStore's new CA must reach every datastore client certificate signed by the old
		// one now, not at each TCP's next event: its TCPs are enqueued.
		b = b.WatchesRawSource(source.Func(func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			r.DataStores.OnCAChange(func(name string) { enqueue(q, r.dataStoreUsers(ctx, name, nil)) })
			return nil
		}))
	}
	return b.Complete(r)
}

// sleepingTCPs lists the TCPs that sleep or wake (read in place from the cache).
func (r *Reconciler) sleepingTCPs(ctx context.Context) []reconcile.Request {
	tcps, err := cachestore.List[kamajiv1alpha1.TenantControlPlane](ctx, r.cache)
	if err != nil {
		log.FromContext(ctx).Error(err, "listing the TenantControlPlanes whose wake addresses changed")
		return nil
	}
	var out []reconcile.Request
	for _, tcp := range tcps {
		c := meta.FindStatusCondition(tcp.Status.Conditions, kamajiv1alpha1.ConditionSleeping)
		if c != nil && (c.Status == metav1.ConditionTrue || c.Reason == sleep.ReasonWaking) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(tcp)})
		}
	}
	return out
}

// notUsageOnly drops the update events of a TCP whose only change is its datastore usage,
// which the DataStore controller refreshes every few minutes: nothing to reconcile there.
var notUsageOnly = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*kamajiv1alpha1.TenantControlPlane)
	n, ok2 := e.ObjectNew.(*kamajiv1alpha1.TenantControlPlane)
	if !ok1 || !ok2 || equality.Semantic.DeepEqual(o.Status.Storage.Usage, n.Status.Storage.Usage) {
		return true
	}
	o, n = o.DeepCopy(), n.DeepCopy()
	o.Status.Storage.Usage, n.Status.Storage.Usage = nil, nil
	o.ResourceVersion, n.ResourceVersion = "", ""
	o.ManagedFields, n.ManagedFields = nil, nil
	return !equality.Semantic.DeepEqual(o, n)
}}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile runs one pass.
func (r *Reconciler) Reconcile(parent context.Context, req ctrl.Request) (ctrl.Result, error) {
	// The steps share the reconcile timeout; the status is written with time of its own, so a
	// step that ran out of time (an unreachable datastore) is still reported.
	ctx := parent
	if r.Options.ReconcileTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(parent, r.Options.ReconcileTimeout)
		defer cancel()
	}
	tcp := &kamajiv1alpha1.TenantControlPlane{}
	// Read the TCP fresh, not from the cache: the previous pass's status (a CA rotation in
	// progress, the objects it recorded) and a rotation request it already honoured must not
	// be seen stale, or a rotation would be repeated and a state forgotten.
	reader := client.Reader(r.Client)
	if r.APIReader != nil {
		reader = r.APIReader
	}
	if err := reader.Get(ctx, req.NamespacedName, tcp); err != nil {
		if apierrors.IsNotFound(err) {
			r.writes.forget(req.NamespacedName)
			r.ensured.forget(req.NamespacedName)
			r.wakePorts.release(req.NamespacedName)
			r.Starts.Done(req.NamespacedName)
			if r.Tenants != nil {
				r.Tenants.Stop(req.NamespacedName)
			}
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if _, paused := tcp.Annotations[kamajiv1alpha1.PausedAnnotation]; paused {
		log.FromContext(ctx).V(1).Info("paused: not reconciling")
		return ctrl.Result{}, nil
	}
	if !tcp.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, tcp)
	}
	if !containsString(tcp.Finalizers, Finalizer) {
		if err := apply.SetFinalizer(ctx, r.Client, tcp, Finalizer, true); err != nil {
			return ctrl.Result{}, err
		}
	}

	p := &pass{tcp: tcp, status: *tcp.Status.DeepCopy(), now: r.now()}
	errs := r.runSteps(ctx, p)
	computeStatus(p, errs...)
	// Inside the tenant: its outcome is the TenantConfigured and AddonsReady conditions only.
	var tenantErr error
	if len(errs) == 0 {
		if tenantErr = r.reconcileTenant(ctx, p); tenantErr != nil {
			log.FromContext(ctx).Info("tenant not configured", "error", tenantErr.Error())
			se, ok := asStepError(tenantErr)
			if !ok {
				se = fail(kamajiv1alpha1.ConditionTenantConfigured, ReasonStepFailed, tenantErr)
			}
			p.setCondition(se.condition, metav1.ConditionFalse, se.reason, se.err.Error())
		}
	}
	sctx, cancel := context.WithTimeout(parent, statusWriteTimeout)
	defer cancel()
	if err := r.applyStatus(sctx, p); err != nil {
		return ctrl.Result{}, err
	}
	res, err := resultFor(append(errs, tenantErr)...)
	if err != nil {
		return res, err
	}
	// Come back when the earliest certificate is due, not at the next event or resync.
	if renew := p.renewalRequeue(r.Options.CertificateExpirationDeadline); renew > 0 && (res.RequeueAfter == 0 || renew < res.RequeueAfter) {
		res.RequeueAfter = renew
	}
	// And when it is due to sleep, or its wake EndpointSlice can go.
	if p.requeueAfter > 0 && (res.RequeueAfter == 0 || p.requeueAfter < res.RequeueAfter) {
		res.RequeueAfter = p.requeueAfter
	}
	return res, nil
}

const statusWriteTimeout = 10 * time.Second

// resultFor turns the pass's errors into a retry: plugin backoff and waits for external state
// use their own delay (the shortest one); any other error goes through the controller's
// exponential backoff.
func resultFor(errs ...error) (ctrl.Result, error) {
	var res ctrl.Result
	for _, err := range errs {
		if err == nil {
			continue
		}
		se, ok := asStepError(err)
		if !ok || se.retryAfter <= 0 {
			return ctrl.Result{}, err
		}
		if res.RequeueAfter == 0 || se.retryAfter < res.RequeueAfter {
			res.RequeueAfter = se.retryAfter
		}
	}
	return res, nil
}

// pluginCallTimeout bounds one datastore plugin call to half the reconcile timeout, so a hung
// datastore leaves time to report it.
func (r *Reconciler) pluginCallTimeout() time.Duration {
	if t := r.Options.ReconcileTimeout / 2; t > 0 {
		return t
	}
	return 15 * time.Second
}

// addonRenderTimeout bounds an addon's Render: rendering is templating, done in milliseconds,
// and a hung addon plugin holds one of the manager's workers for as long as the call may last,
// slowing every other TCP's passes (the chaos suite's hung-addon scenario).
const addonRenderTimeout = 5 * time.Second

func (r *Reconciler) addonCallTimeout() time.Duration {
	return min(r.pluginCallTimeout(), addonRenderTimeout)
}

func (r *Reconciler) applyStatus(ctx context.Context, p *pass) error {
	p.status.ObservedGeneration = p.tcp.Generation
	if equality.Semantic.DeepEqual(p.status, p.tcp.Status) {
		return nil // nothing changed: no write
	}
	obj := &kamajiv1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: p.tcp.Name, Namespace: p.tcp.Namespace},
		Status:     *p.status.DeepCopy(),
	}
	// The usage belongs to the DataStore controller's field manager: never declared here.
	obj.Status.Storage.Usage = nil
	err := apply.ApplyStatus(ctx, r.Client, obj)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		// Only a written status is a transition: a failed write is retried, and recorded then.
		r.recordTransitions(p)
	}
	return err
}

// owned sets the controller reference so the garbage collector removes obj with the TCP.
func owned(tcp *kamajiv1alpha1.TenantControlPlane, obj client.Object) {
	t := true
	obj.SetOwnerReferences([]metav1.OwnerReference{{
		APIVersion: kamajiv1alpha1.GroupVersion.String(), Kind: "TenantControlPlane",
		Name: tcp.Name, UID: tcp.UID, Controller: &t, BlockOwnerDeletion: &t,
	}})
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
