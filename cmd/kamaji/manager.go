package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/openhcp/kamaji/core/manager"
	"github.com/openhcp/kamaji/core/settings"
)

func newManagerCommand() *cobra.Command {
	s := &settings.Settings{}
	var configPath string
	logs := zap.Options{}
	cmd := &cobra.Command{
		Use:   "manager",
		Short: "Run the controllers and admission webhooks",
		Long: `Run the controllers and admission webhooks.

Every flag can also be set in the config file (the key is the flag name) or in the
environment (KAMAJI_ and the flag name in upper case with underscores); flags win over the
environment, which wins over the file. Plugins are listed in the config file only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			explicit := cmd.Flags().Changed("config")
			if !explicit {
				if env, ok := os.LookupEnv(envPrefix + "CONFIG"); ok {
					configPath, explicit = env, true
				}
			}
			plugins, err := applyConfig(cmd.Flags(), configPath, explicit)
			if err != nil {
				return err
			}
			s.Plugins = plugins
			if err := s.Validate(); err != nil {
				return err
			}
			return runManager(s, &logs)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "kamaji.yaml", "Path of the configuration file (optional unless given explicitly).")
	f.StringVar(&s.MetricsBindAddress, "metrics-bind-address", ":8080", "The address the metric endpoint binds to.")
	f.StringVar(&s.HealthProbeBindAddress, "health-probe-bind-address", ":8081", "The address the probe endpoint binds to.")
	f.StringVar(&s.PprofBindAddress, "pprof-bind-address", "0", `The address the pprof endpoint binds to; "0" disables it.`)
	f.BoolVar(&s.LeaderElect, "leader-elect", true, "Enable leader election for controller manager. Enabling this will ensure there is only one active controller manager.")
	f.StringVar(&s.TmpDirectory, "tmp-directory", "/tmp/kamaji", "Directory which will be used to work with temporary files.")
	f.StringVar(&s.KineImage, "kine-image", "rancher/kine:v0.17.5-amd64", "Container image along with tag to use for the Kine sidecar container (used only if the DataStore driver runs through kine).")
	f.StringVar(&s.DataStore, "datastore", "", "Optional, the default DataStore that should be used by Kamaji to setup the required storage of Tenant Control Planes with undeclared DataStore.")
	f.StringVar(&s.MigrateImage, "migrate-image", "ghcr.io/openhcp/kamaji:"+version, "Specify the container image to launch when a TenantControlPlane is migrated to a new datastore.")
	f.IntVar(&s.MaxConcurrentTCPReconciles, "max-concurrent-tcp-reconciles", 1, "Specify the number of workers for the Tenant Control Plane controller (beware of CPU consumption).")
	f.IntVar(&s.MaxStartingControlPlanes, "max-starting-control-planes", 0, "How many tenant control planes may start at once (a first start, a wake, a start after a scale from zero); the others wait their turn with no replica, the Ready condition saying so, wakes first. A start counts until a replica is available, for 30s at most. 0: no limit. A kube-apiserver's start is CPU-bound: on a small admin cluster, about the cores its control planes run on, plus one.")
	f.StringVar(&s.PodNamespace, "pod-namespace", os.Getenv("POD_NAMESPACE"), "The Kubernetes Namespace on which the Operator is running in, required for the TenantControlPlane migration jobs.")
	f.StringVar(&s.WebhookServiceName, "webhook-service-name", "kamaji-webhook-service", "The Kamaji webhook server Service name which is used to get validation webhooks, required for the TenantControlPlane migration jobs.")
	f.StringVar(&s.ServiceAccountName, "serviceaccount-name", os.Getenv("SERVICE_ACCOUNT"), "The Kubernetes ServiceAccount the Operator runs as, required for the TenantControlPlane migration jobs.")
	f.StringVar(&s.WebhookCAPath, "webhook-ca-path", "/tmp/k8s-webhook-server/serving-certs/ca.crt", "Path to the CA of the manager's webhook serving certificate, given to the webhooks tenant apiservers call (--tenant-webhook-url); when the file is missing, ca.crt of --webhook-cert-dir, else the self-managed CA.")
	f.DurationVar(&s.ControllerReconcileTimeout, "controller-reconcile-timeout", 30*time.Second, "The reconciliation request timeout before the controller withdraw the external resource calls, such as dealing with the Datastore, or the Tenant Control Plane API endpoint.")
	f.DurationVar(&s.CacheResyncPeriod, "cache-resync-period", 10*time.Hour, "The controllers' cache resync period.")
	f.BoolVar(&s.DisableTelemetry, "disable-telemetry", false, "Accepted for compatibility; this build sends no telemetry at all.")
	f.DurationVar(&s.CertificateExpirationDeadline, "certificate-expiration-deadline", 24*time.Hour, "Define the deadline upon certificate expiration to start the renewal process, cannot be less than a 24 hours.")
	f.DurationVar(&s.CARotationOverlap, "ca-rotation-overlap", 24*time.Hour, "How long a tenant's previous CA stays trusted after its CA is rotated (certs.kamaji.clastix.io/rotate on the CA Secret, or its renewal); the CA Secret's kamaji.clastix.io/ca-previous-until annotation holds the end, and may be edited.")
	f.IntVar(&s.WebhookPort, "webhook-port", 9443, "The port the admission webhook server listens on.")
	f.StringVar(&s.WebhookCertDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "Folder with the webhook server's tls.crt and tls.key.")
	f.StringVar(&s.TenantWebhookURL, "tenant-webhook-url", "", "The https base URL at which tenant apiservers reach this manager's webhook server, such as https://kamaji-webhook-service.kamaji-system.svc:443: the webhooks that freeze a migrating tenant and enforce spec.writePermissions call it, trusting the CA of --webhook-ca-path (else ca.crt of --webhook-cert-dir, else the self-managed CA). Empty: migrations and write permissions fail with a condition naming this flag.")
	// Self-managed webhook certificates (core/webhookcerts), off by default: the cert dir is
	// read as it is, as the local plane and any external issuer expect.
	f.StringVar(&s.WebhookCertSecretName, "webhook-cert-secret-name", "", "When set, the manager issues its webhook serving certificate itself (a self-signed CA and a certificate for --webhook-service-name), keeps it in this Secret of --pod-namespace, serves it and writes it to --webhook-cert-dir, and renews it when a third of its validity is left; empty: tls.crt and tls.key are read from --webhook-cert-dir.")
	f.DurationVar(&s.WebhookCertValidity, "webhook-cert-validity", 365*24*time.Hour, "Validity of the self-managed webhook CA and serving certificate (with --webhook-cert-secret-name; at least 1h).")
	f.StringVar(&s.WebhookMutatingConfigurationName, "webhook-mutating-configuration-name", "", "MutatingWebhookConfiguration whose webhooks get the self-managed CA bundle (with --webhook-cert-secret-name).")
	f.StringVar(&s.WebhookValidatingConfigurationName, "webhook-validating-configuration-name", "", "ValidatingWebhookConfiguration whose webhooks get the self-managed CA bundle (with --webhook-cert-secret-name).")
	// One budget for the whole manager (core/manager/ratelimit.go). A new TCP costs about 28
	// requests (10 Secrets, 9 Events, status), so 500/s lets a 2-core admin cluster provision
	// at its own pace (11 TCP/s measured); the admin apiserver's priority and fairness protects it.
	f.Float64Var(&s.KubeAPIQPS, "kube-api-qps", 500, "Requests per second the manager sends to the admin cluster's apiserver at most, on average: one budget for all its requests (leader election's lease renewals apart).")
	f.DurationVar(&s.ShutdownDelay, "shutdown-delay", manager.DefaultShutdownDelay, "How long the manager goes on serving after SIGTERM before it stops: admission webhooks, the tenants' webhook and audit calls, sleeping tenants' connections, and, as leader, its controllers; meanwhile its pod leaves the Services' endpoints and kube-proxy's rules, so clients still led to it are answered. 0: stop at once. Keep it, plus 10s for the wake connections still open, within the pod's termination grace period.")
	f.IntVar(&s.KubeAPIBurst, "kube-api-burst", 1000, "Requests the manager may send to the admin cluster's apiserver in a burst above --kube-api-qps.")
	// controller-runtime's logging flags, as Kamaji has them: --zap-devel, --zap-encoder,
	// --zap-log-level, --zap-stacktrace-level, --zap-time-encoding.
	zapFlags := flag.NewFlagSet("zap", flag.ContinueOnError)
	logs.BindFlags(zapFlags)
	f.AddGoFlagSet(zapFlags)
	return cmd
}

func runManager(s *settings.Settings, logs *zap.Options) error {
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(logs)))
	gogc, _ := manager.TuneGC()
	ctrl.Log.WithName("setup").Info("starting", "version", version, "GOGC", gogc)
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("no admin cluster to talk to: %v", err)
	}
	mgr, err := manager.New(cfg, s, manager.Options{WebhookPort: s.WebhookPort, WebhookCertDir: s.WebhookCertDir, Version: version})
	if err != nil {
		return err
	}
	return mgr.Start(manager.SignalContext(s.ShutdownDelay, ctrl.Log.WithName("setup")))
}
