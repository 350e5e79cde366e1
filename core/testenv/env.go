package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/manager"
	"github.com/openhcp/kamaji/core/settings"
)

// Env is a plane with our CRDs, a running manager (webhooks and controllers) and a client.
type Env struct {
	*Plane
	Client  client.Client
	Manager ctrl.Manager
	// WebhookURL is the manager's webhook server (https://127.0.0.1:<port>), the manager's
	// tenant-webhook-url unless the settings name another.
	WebhookURL string
	cancel     context.CancelFunc
	done       chan error
}

// DefaultSettings are the manager settings integration tests start from.
func DefaultSettings() *settings.Settings {
	return &settings.Settings{
		MaxConcurrentTCPReconciles: 4,
		// A pass on an unreachable datastore waits half of it for each plugin call.
		ControllerReconcileTimeout:    10e9,
		CertificateExpirationDeadline: settings.MinCertificateExpirationDeadline,
		DataStore:                     "default",
	}
}

// StartEnv starts a plane, installs the CRDs, starts the manager with the given settings and
// registers the webhooks against its webhook server. Stop it with env.Stop.
func StartEnv(ctx context.Context, s *settings.Settings, opts Options) (_ *Env, err error) {
	plane, err := Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	env := &Env{Plane: plane}
	defer func() {
		if err != nil {
			env.Stop()
		}
	}()
	if err := plane.InstallCRDs(ctx); err != nil {
		return nil, err
	}
	certDir := filepath.Join(plane.Dir, "webhook-certs")
	if err := plane.ServingCert(certDir); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	// Tenant apiservers of the tests are local processes: they reach the manager on loopback.
	env.WebhookURL = "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if s.TenantWebhookURL == "" {
		withURL := *s
		withURL.TenantWebhookURL = env.WebhookURL
		s = &withURL
	}
	env.Manager, err = manager.New(plane.Config, s, manager.Options{WebhookHost: "127.0.0.1", WebhookPort: port, WebhookCertDir: certDir, Now: opts.Now, Tenants: opts.Tenants,
		DataStoreRecheck: opts.DataStoreRecheck, DataStoreUsage: opts.DataStoreUsage})
	if err != nil {
		return nil, err
	}
	// The tests' client also knows CRDs, to install third-party APIs (such as the Gateway API).
	scheme := manager.Scheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	env.Client, err = client.New(plane.Config, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	// The manager logs to a file beside the plane's logs: quiet tests, full detail on failure.
	if logf, err := os.Create(filepath.Join(plane.Dir, "manager.log")); err == nil {
		ctrl.SetLogger(zap.New(zap.WriteTo(logf), zap.UseDevMode(true)))
	}
	mctx, cancel := context.WithCancel(context.Background())
	env.cancel, env.done = cancel, make(chan error, 1)
	go func() { env.done <- env.Manager.Start(mctx) }()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := plane.RegisterWebhooks(ctx, addr); err != nil {
		return nil, err
	}
	return env, env.waitWebhooksEnforced(ctx)
}

// waitWebhooksEnforced blocks until the apiserver calls our webhooks: registration reaches the
// apiserver's informer asynchronously, and a test that raced it would see its rules skipped.
func (e *Env) waitWebhooksEnforced(ctx context.Context) error {
	probe := &kamajiv1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: "webhook-probe", Namespace: "default"},
		Spec: kamajiv1alpha1.TenantControlPlaneSpec{
			ControlPlane: kamajiv1alpha1.ControlPlane{Service: kamajiv1alpha1.ServiceSpec{ServiceType: "ClusterIP"}},
			// Newer than any minor the core knows: refused by the version rule.
			Kubernetes: kamajiv1alpha1.KubernetesSpec{Version: "v1.99.0"},
		},
	}
	var last error
	err := poll(ctx, nil, "the apiserver to call our webhooks", func() bool {
		last = e.Client.Create(ctx, probe.DeepCopy(), client.DryRunAll)
		return last != nil && strings.Contains(last.Error(), "spec.kubernetes.version")
	})
	if err != nil {
		return fmt.Errorf("%w (last answer: %v)", err, last)
	}
	return nil
}

// Stop stops the manager and the plane.
func (e *Env) Stop() {
	if e.cancel != nil {
		e.cancel()
		if err := <-e.done; err != nil && !errors.Is(err, context.Canceled) {
			fmt.Println("manager exited with:", err)
		}
	}
	if e.Plane != nil {
		e.Plane.Stop()
	}
}

// StopAfter stops the env once the tests ended with code (testing.M.Run's). After a failure the
// plane's folder stays, with the manager's log beside the apiserver's and etcd's, and its path is
// printed: the log says what the controllers did while a test waited in vain.
func (e *Env) StopAfter(code int) {
	if code != 0 && e.Plane != nil && e.Plane.Dir != "" {
		e.Plane.keep = true
		fmt.Fprintf(os.Stderr, "tests failed: the manager's log (manager.log) and the plane's are kept in %s\n", e.Plane.Dir)
	}
	e.Stop()
}

// RunTests is a TestMain's end: with env started (err nil) it runs m's tests, stops env with
// StopAfter and returns their code; when the start failed it says why, stops what started and
// returns 1.
func RunTests(m *testing.M, env *Env, err error) int {
	if err != nil {
		fmt.Fprintln(os.Stderr, "test plane:", err)
		if env != nil {
			env.Stop()
		}
		return 1
	}
	code := m.Run()
	env.StopAfter(code)
	return code
}

// IgnoreAlreadyExists is a convenience for fixtures.
func IgnoreAlreadyExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}
