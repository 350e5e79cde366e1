// Package manager assembles the controller-runtime manager that `kamaji manager` runs: the
// scheme, caches restricted to what we own, the webhooks and the controllers.
package manager

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	dscontroller "github.com/openhcp/kamaji/core/controllers/datastore"
	kcgcontroller "github.com/openhcp/kamaji/core/controllers/kubeconfiggenerator"
	tcpcontroller "github.com/openhcp/kamaji/core/controllers/tenantcontrolplane"
	"github.com/openhcp/kamaji/core/datastores"
	"github.com/openhcp/kamaji/core/eventrecorder"
	"github.com/openhcp/kamaji/core/metrics"
	"github.com/openhcp/kamaji/core/pluginhost"
	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/core/sleep"
	"github.com/openhcp/kamaji/core/startqueue"
	"github.com/openhcp/kamaji/core/tenant"
	"github.com/openhcp/kamaji/core/webhookcerts"
	"github.com/openhcp/kamaji/core/webhooks"
)

// +kubebuilder:rbac:groups=kamaji.clastix.io,resources=tenantcontrolplanes;datastores,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=kamaji.clastix.io,resources=tenantcontrolplanes/status;datastores/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=kamaji.clastix.io,resources=tenantcontrolplanes/finalizers;datastores/finalizers,verbs=update
// Leader election's lease lives in the manager's namespace ("system" is the placeholder the
// chart replaces): a Role there, not a ClusterRole.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete,namespace=system
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// Scheme holds every kind the manager reads or writes.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	must(clientgoscheme.AddToScheme(s))
	must(kamajiv1alpha1.AddToScheme(s))
	return s
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// Options are what the manager needs beyond the settings: where the webhook server listens
// (tests point it at loopback) and the clock (tests move it to exercise rotation).
type Options struct {
	WebhookHost    string
	WebhookPort    int
	WebhookCertDir string
	Now            func() time.Time
	// Tenants are the clients of the tenant clusters; nil builds the default (kubeconfig
	// servers dialed as they are). Tests pass their own to reach tenant apiservers that are not
	// behind a routable Service (tenant.Options.Dial) and to look at the tenants' watches.
	Tenants *tenant.Clients
	// Version is the manager's version, for kamaji_build_info (empty: the Go module's).
	Version string
	// WebhookCertInterval is how often self-managed webhook certificates are checked
	// (webhookcerts.DefaultInterval when zero); tests shorten it.
	WebhookCertInterval time.Duration
	// DataStoreRecheck is how often a DataStore is re-validated (dscontroller.Recheck when
	// zero); tests shorten it.
	DataStoreRecheck time.Duration
	// DataStoreUsage: how often and how much of the tenants' usage is counted per DataStore
	// pass (dscontroller.DefaultUsagePolicy for zero fields); tests shorten and lower it.
	DataStoreUsage dscontroller.UsagePolicy
}

// New builds the manager. Nothing starts until mgr.Start.
func New(cfg *rest.Config, s *settings.Settings, o Options) (ctrl.Manager, error) {
	owned := labels.SelectorFromSet(labels.Set{kamajiv1alpha1.ManagedByLabel: kamajiv1alpha1.ManagedByValue})
	resync := s.CacheResyncPeriod
	opts := ctrl.Options{
		Scheme: Scheme(),
		Metrics: metricsserver.Options{
			BindAddress: orDisabled(s.MetricsBindAddress),
			// The only way into controller-runtime's /metrics handler: the state metrics are
			// written after the registry's (metrics.WithState, core/metrics/exposition.go).
			FilterProvider: func(*rest.Config, *http.Client) (metricsserver.Filter, error) {
				return func(_ logr.Logger, h http.Handler) (http.Handler, error) { return metrics.WithState(h), nil }, nil
			},
		},
		HealthProbeBindAddress:  orDisabled(s.HealthProbeBindAddress),
		PprofBindAddress:        orDisabled(s.PprofBindAddress),
		LeaderElection:          s.LeaderElect,
		LeaderElectionID:        "kamaji.clastix.io",
		LeaderElectionNamespace: s.PodNamespace,
		// Stepping down on exit lets a new leader take over at once during a rollout.
		LeaderElectionReleaseOnCancel: true,
		Cache: cache.Options{
			DefaultTransform: stripManagedFields, // cachetransform.go
			// Only what we own is cached: never every Secret of the admin cluster.
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Secret{}:             {Label: owned, Transform: slimSecret},
				&corev1.ConfigMap{}:          {Label: owned},
				&corev1.Service{}:            {Label: owned},
				&appsv1.Deployment{}:         {Label: owned, Transform: slimDeployment},
				&corev1.Pod{}:                {Label: owned, Transform: slimPod},
				&networkingv1.Ingress{}:      {Label: owned},
				&coordinationv1.Lease{}:      {Label: hasLabel(sleep.ActivityLabel)},
				&discoveryv1.EndpointSlice{}: {Namespaces: wakeSliceNamespaces(s)},
			},
		},
	}
	// Self-managed certificates are served from memory: the webhook server starts before the
	// certificate exists (and before leader election), which a certificate file would not allow.
	var certs *webhookcerts.Manager
	whOpts := webhook.Options{Host: o.WebhookHost, Port: o.WebhookPort, CertDir: o.WebhookCertDir}
	if s.WebhookCertSecretName != "" {
		whOpts.TLSOpts = []func(*tls.Config){func(c *tls.Config) {
			c.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return certs.GetCertificate(h) }
		}}
	}
	opts.WebhookServer = webhook.NewServer(whOpts)
	if resync > 0 {
		opts.Cache.SyncPeriod = &resync
	}
	if s.LeaderElect && opts.LeaderElectionNamespace == "" {
		opts.LeaderElectionNamespace = os.Getenv("POD_NAMESPACE")
	}
	cfg, opts.LeaderElectionConfig = rateLimited(cfg, s) // ratelimit.go
	mgr, err := ctrl.NewManager(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	// The state metrics read the cache at each scrape (see core/metrics); the certificates'
	// expiries, read before the cache drops the Secrets' data, go with their Secret.
	metrics.ReadFrom(mgr.GetCache())
	secrets, err := mgr.GetCache().GetInformer(context.Background(), &corev1.Secret{})
	if err != nil {
		return nil, fmt.Errorf("the Secret informer: %w", err)
	}
	if _, err := secrets.AddEventHandler(toolscache.ResourceEventHandlerFuncs{DeleteFunc: metrics.ForgetSecret}); err != nil {
		return nil, fmt.Errorf("the Secret informer: %w", err)
	}
	metrics.SetVersion(o.Version)
	if s.WebhookCertSecretName != "" {
		certs = webhookcerts.New(mgr.GetClient(), mgr.GetAPIReader(), mgr.Elected(), webhookcerts.Options{
			Namespace: opts.LeaderElectionNamespace, SecretName: s.WebhookCertSecretName, ServiceName: s.WebhookServiceName,
			CertDir:               o.WebhookCertDir,
			MutatingConfiguration: s.WebhookMutatingConfigurationName, ValidatingConfiguration: s.WebhookValidatingConfigurationName,
			Validity: s.WebhookCertValidity, Interval: o.WebhookCertInterval, Now: o.Now,
			Log: ctrl.Log.WithName("webhook-certs"),
		})
		if err := mgr.Add(certs); err != nil {
			return nil, err
		}
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &kamajiv1alpha1.TenantControlPlane{}, webhooks.SliceIndex, webhooks.SliceIndexValues); err != nil {
		return nil, fmt.Errorf("indexing TenantControlPlanes by slice: %w", err)
	}
	host := pluginhost.New(s.Plugins, pluginhost.Options{Log: ctrl.Log.WithName("plugins")})
	cache := &datastores.Cache{Reader: mgr.GetAPIReader(), TTL: 30 * time.Second}
	webhooks.Register(mgr.GetWebhookServer(), mgr.GetAPIReader(), mgr.GetClient(), mgr.GetRESTMapper(), webhooks.Options{
		DefaultDataStore: s.DataStore,
		Drivers:          s.Drivers(),
		Slices:           sliceValidator{host: host, dataStores: cache},
		Addons:           s.Addons(),
	})
	// Plugins stop with the manager (and, through Pdeathsig, even if it is killed).
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		host.Close()
		return nil
	})); err != nil {
		return nil, err
	}
	// Our own recorder, not the manager's: see core/eventrecorder for why.
	recorder := eventrecorder.New(mgr.GetClient(), eventrecorder.Options{Controller: "kamaji", Log: ctrl.Log.WithName("events")})
	if err := mgr.Add(recorder); err != nil {
		return nil, err
	}
	if err := (&dscontroller.Reconciler{Client: mgr.GetClient(), Plugins: host, DataStores: cache, Now: o.Now, Recorder: recorder, Recheck: o.DataStoreRecheck, Usage: o.DataStoreUsage}).SetupWithManager(mgr); err != nil {
		return nil, err
	}
	tenants := o.Tenants
	if tenants == nil {
		tenants = tenant.NewClients(tenant.Options{Scheme: Scheme(), Log: ctrl.Log.WithName("tenants")})
	}
	// Sleep and wake (core/sleep): every replica records activity and holds the connections of
	// sleeping tenants; the leader's TCP controller decides.
	activity := &sleep.Recorder{Client: mgr.GetClient(), Now: o.Now}
	mgr.GetWebhookServer().Register(sleep.ActivityPath, sleep.AuditHandler(activity, ctrl.Log.WithName("activity")))
	if err := mgr.Add(&sleep.WakeServer{
		Slices: mgr.GetClient(), Informers: mgr.GetCache(), Toucher: activity,
		Backend: sleep.PodBackend(mgr.GetAPIReader(), mgr.GetClient()), Log: ctrl.Log.WithName("wake"),
	}); err != nil {
		return nil, err
	}
	wakeService := types.NamespacedName{}
	if s.PodNamespace != "" && s.WebhookServiceName != "" {
		wakeService = types.NamespacedName{Namespace: s.PodNamespace, Name: s.WebhookServiceName}
	}
	starts := startqueue.New(s.MaxStartingControlPlanes, 0, o.Now)
	metrics.SetStartQueue(starts.Len)
	if err := (&tcpcontroller.Reconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Plugins: host, DataStores: cache, Tenants: tenants, Now: o.Now,
		Recorder: recorder,
		Starts:   starts,
		Options: tcpcontroller.Options{
			MaxConcurrentReconciles:       s.MaxConcurrentTCPReconciles,
			ReconcileTimeout:              s.ControllerReconcileTimeout,
			CertificateExpirationDeadline: s.CertificateExpirationDeadline,
			CARotationOverlap:             s.CARotationOverlap,
			KineImage:                     s.KineImage,
			TenantWebhook:                 tenantWebhook{url: s.TenantWebhookURL, caPath: s.WebhookCAPath, certDir: o.WebhookCertDir, certs: certs}.Get,
			WakeService:                   wakeService,
			ManagerNamespace:              s.PodNamespace,
		},
	}).SetupWithManager(mgr); err != nil {
		return nil, err
	}
	if err := (&kcgcontroller.Reconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Now: o.Now,
		Options: kcgcontroller.Options{CertificateExpirationDeadline: s.CertificateExpirationDeadline},
	}).SetupWithManager(mgr); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("webhooks", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return nil, err
	}
	return mgr, nil
}

// hasLabel selects the objects that carry a label, whatever its value.
func hasLabel(key string) labels.Selector {
	req, err := labels.NewRequirement(key, selection.Exists, nil)
	if err != nil {
		panic(err)
	}
	return labels.NewSelector().Add(*req)
}

// wakeSliceNamespaces caches two kinds of EndpointSlices: the wake slices of sleeping TCPs,
// anywhere, and, in the manager's namespace, those of its webhook Service, whose ready
// addresses hold a sleeping TCP's connections.
func wakeSliceNamespaces(s *settings.Settings) map[string]cache.Config {
	out := map[string]cache.Config{cache.AllNamespaces: {LabelSelector: hasLabel(sleep.WakeLabel)}}
	if s.PodNamespace != "" && s.WebhookServiceName != "" {
		out[s.PodNamespace] = cache.Config{LabelSelector: labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: s.WebhookServiceName})}
	}
	return out
}

func orDisabled(addr string) string {
	if addr == "" {
		return "0"
	}
	return addr
}
