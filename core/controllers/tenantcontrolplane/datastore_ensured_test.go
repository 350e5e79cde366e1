package tenantcontrolplane_test

// A TCP at rest costs its datastore nothing: EnsureTenant is not called again on passes whose
// inputs did not change, and is called again on a change, a missing storage Secret, the
// periodic verification and after a restart. Counted from the manager's /metrics (the plugin
// RPC histogram's count, by plugin and method).

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	tcpcontroller "github.com/openhcp/kamaji/core/controllers/tenantcontrolplane"
	"github.com/openhcp/kamaji/core/datastores"
	"github.com/openhcp/kamaji/core/pluginhost"
	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/core/tenantpki"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// ensureCalls is how many EnsureTenant calls the plugin of that kamaji.yaml name answered OK.
func ensureCalls(t *testing.T, plugin string) float64 {
	t.Helper()
	v, _ := scrapeManager(t).Value("kamaji_plugin_rpc_duration_seconds",
		map[string]string{"plugin": plugin, "method": "DataStore/EnsureTenant", "code": "OK"})
	return v
}

// forcePass changes a spec field no datastore input depends on (a label of the Deployment) and
// waits for the manager's pass to record the new generation: a pass known to have run.
func forcePass(t *testing.T, name string, i int) {
	t.Helper()
	var gen int64
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		tcp := getTCP(ctxT(t), t, name)
		if tcp.Spec.ControlPlane.Deployment.AdditionalMetadata.Labels == nil {
			tcp.Spec.ControlPlane.Deployment.AdditionalMetadata.Labels = map[string]string{}
		}
		tcp.Spec.ControlPlane.Deployment.AdditionalMetadata.Labels["test.kamaji/pass"] = fmt.Sprint(i)
		err := env.Client.Update(ctxT(t), tcp)
		gen = tcp.Generation
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pass of generation "+fmt.Sprint(gen), func(ctx context.Context) (bool, error) {
		tcp := getTCP(ctx, t, name)
		return tcp.Status.ObservedGeneration >= gen, fmt.Errorf("observedGeneration %d", tcp.Status.ObservedGeneration)
	})
}

func TestEnsureTenantOnlyOnChange(t *testing.T) {
	const name, plugin = "quiet", "datastore-etcd"
	etcd := testkit.StartEtcd(t)
	if err := env.Client.Create(ctxT(t), dataStoreFor(name, etcd)); err != nil {
		t.Fatal(err)
	}
	tcp := newTCP(name, "v1.36.1")
	tcp.Spec.DataStore = name
	if err := env.Client.Create(ctxT(t), tcp); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the slice and the Deployment", func(ctx context.Context) (bool, error) {
		tcp = getTCP(ctx, t, name)
		return meta.IsStatusConditionTrue(tcp.Status.Conditions, kamajiv1alpha1.ConditionDataStoreReady) && tcp.Status.Kubernetes.Deployment.Name == name,
			fmt.Errorf("conditions %v", tcp.Status.Conditions)
	})

	t.Run("passes of an unchanged TCP do not call EnsureTenant", func(t *testing.T) {
		// Other tests' TCPs share the manager and its counter: a window in which three passes of
		// this TCP ran and the count stayed put shows them calling nothing (each of them would
		// add one otherwise). A few windows allow for another TCP's call.
		var deltas []float64
		for w := 0; w < 4; w++ {
			before := ensureCalls(t, plugin)
			for i := 0; i < 3; i++ {
				forcePass(t, name, w*3+i)
			}
			d := ensureCalls(t, plugin) - before
			if d == 0 {
				return
			}
			deltas = append(deltas, d)
		}
		t.Fatalf("EnsureTenant was called in every window of three passes of an unchanged TCP: %v calls", deltas)
	})

	t.Run("a DataStore change calls it again, without a pass being forced", func(t *testing.T) {
		before := ensureCalls(t, plugin)
		setEndpoints(t, name, []string{"https://" + etcd.Endpoints[0]}) // the same etcd, another spelling
		eventually(t, "an EnsureTenant after the DataStore's change", func(context.Context) (bool, error) {
			n := ensureCalls(t, plugin)
			return n > before, fmt.Errorf("%v calls, %v before", n, before)
		})
	})

	t.Run("a deleted storage Secret calls it again", func(t *testing.T) {
		before := ensureCalls(t, plugin)
		secret := tenantpki.SecretName(name, tenantpki.Datastore)
		if err := env.Client.Delete(ctxT(t), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: secret}}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the Secret back and an EnsureTenant", func(ctx context.Context) (bool, error) {
			s := &corev1.Secret{}
			err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: secret}, s)
			n := ensureCalls(t, plugin)
			return err == nil && n > before, fmt.Errorf("Secret: %v; %v calls, %v before", err, n, before)
		})
	})

	t.Run("a restarted manager calls it once, then at the verification", func(t *testing.T) {
		// A reconciler of the test's own, its plugin under a name of its own: its calls are
		// counted apart from the manager's, and its clock is the test's.
		const own = "datastore-etcd-verify"
		var plugins []settings.Plugin
		for _, p := range managerPlugins {
			if p.Name == plugin {
				p.Name = own
			}
			plugins = append(plugins, p)
		}
		var offset time.Duration
		clock := func() time.Time { return now().Add(offset) }
		newReconciler := func() *tcpcontroller.Reconciler {
			host := pluginhost.New(plugins, pluginhost.Options{ProbeInterval: -1})
			t.Cleanup(host.Close)
			return &tcpcontroller.Reconciler{
				Client: env.Client, APIReader: env.Client, Plugins: host, Now: clock,
				DataStores: &datastores.Cache{Reader: env.Client, TTL: time.Second},
				Options: tcpcontroller.Options{
					MaxConcurrentReconciles: 1, ReconcileTimeout: 30 * time.Second,
					CertificateExpirationDeadline: settings.MinCertificateExpirationDeadline,
				},
			}
		}
		pass := func(r *tcpcontroller.Reconciler) {
			t.Helper()
			if _, err := r.Reconcile(ctxT(t), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "default", Name: name}}); err != nil {
				t.Fatalf("a pass: %v", err)
			}
		}
		calls := func(r *tcpcontroller.Reconciler, step string, want float64) {
			t.Helper()
			before := ensureCalls(t, own)
			pass(r)
			if got := ensureCalls(t, own) - before; got != want {
				t.Errorf("%s: %v EnsureTenant calls, want %v", step, got, want)
			}
		}
		r := newReconciler()
		calls(r, "the first pass after a start", 1)
		calls(r, "the next pass", 0)
		offset = tcpcontroller.DefaultDataStoreVerifyInterval - time.Second
		saBefore := getTCP(ctxT(t), t, name).Status.Certificates.SA
		calls(r, "a pass before the verification is due", 0)
		// Nor does a pass rewrite the status of a TCP at rest (a write would bring another pass).
		if sa := getTCP(ctxT(t), t, name).Status.Certificates.SA; !sa.LastUpdate.Equal(&saBefore.LastUpdate) {
			t.Errorf("a pass 10 minutes later changed status.certificates.sa: %+v, was %+v", sa, saBefore)
		}
		offset = tcpcontroller.DefaultDataStoreVerifyInterval * 6 / 5
		calls(r, "a pass once the verification is due", 1)
		calls(r, "the pass after the verification", 0)
		calls(newReconciler(), "the first pass of a restarted manager", 1)
	})
}

// A TCP whose DataStore refers to a Secret that does not exist yet is retried with the
// controller's exponential backoff (the pass returns an error, no fixed RequeueAfter), says so,
// and is provisioned once the Secret is created (the DataStore turning Ready enqueues it).
func TestMissingDataStoreSecretBacksOff(t *testing.T) {
	const name = "late-secret"
	etcd := testkit.StartEtcd(t)
	ds := dataStoreFor(name, etcd)
	ds.Spec.TLSConfig.CertificateAuthority.PrivateKey = &kamajiv1alpha1.ContentRef{
		SecretRef: &kamajiv1alpha1.SecretReference{Name: name, Namespace: "default", KeyPath: "ca.key"},
	}
	if err := env.Client.Create(ctxT(t), ds); err != nil {
		t.Fatal(err)
	}
	tcp := newTCP(name, "v1.36.1")
	tcp.Spec.DataStore = name
	if err := env.Client.Create(ctxT(t), tcp); err != nil {
		t.Fatal(err)
	}
	ps := newPasser(t, now)
	res, err := ps.r.Reconcile(ctxT(t), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "default", Name: name}})
	if err == nil || res.RequeueAfter != 0 {
		t.Fatalf("a pass returned %+v, %v: want an error (exponential backoff) and no fixed RequeueAfter", res, err)
	}
	c := meta.FindStatusCondition(getTCP(ctxT(t), t, name).Status.Conditions, kamajiv1alpha1.ConditionDataStoreReady)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != tcpcontroller.ReasonDataStoreSecretMissing || !strings.Contains(c.Message, "retrying with exponential backoff") {
		t.Fatalf("DataStoreReady %+v: want False, %s, saying it retries with exponential backoff", c, tcpcontroller.ReasonDataStoreSecretMissing)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Data: map[string][]byte{"ca.key": etcd.CAKey}}
	if err := env.Client.Create(ctxT(t), secret); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the slice once the Secret exists", func(ctx context.Context) (bool, error) {
		tcp = getTCP(ctx, t, name)
		return meta.IsStatusConditionTrue(tcp.Status.Conditions, kamajiv1alpha1.ConditionDataStoreReady), fmt.Errorf("conditions %v", tcp.Status.Conditions)
	})
}
