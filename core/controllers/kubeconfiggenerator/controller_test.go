package kubeconfiggenerator_test

// Integration tests of KubeconfigGenerator against a real admin apiserver with the whole
// manager running: the TenantControlPlane controller (with the real etcd datastore plugin and a
// multi-tenant etcd) creates each tenant's CA and admin kubeconfig Secrets, and the generator
// works from those.

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	kcg "github.com/openhcp/kamaji/core/controllers/kubeconfiggenerator"
	"github.com/openhcp/kamaji/core/metrics/metricstest"
	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/core/tenantpki"
	"github.com/openhcp/kamaji/core/testenv"
	"github.com/openhcp/kamaji/core/testenv/testdatastore"
	"github.com/openhcp/kamaji/sdk/testkit"
)

var (
	env *testenv.Env
	// metricsURL is the manager's /metrics endpoint.
	metricsURL string
	// The manager's clock; tests move it forward to reach renewal deadlines.
	clockMu     sync.Mutex
	clockOffset time.Duration
)

func now() time.Time {
	clockMu.Lock()
	defer clockMu.Unlock()
	return time.Now().Add(clockOffset)
}

func advanceClock(d time.Duration) {
	clockMu.Lock()
	clockOffset += d
	clockMu.Unlock()
}

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	dir, err := os.MkdirTemp("", "kamaji-kcg-test-")
	var plugin settings.Plugin
	if err == nil {
		plugin, err = testenv.BuildPlugin(dir, "datastore-etcd", settings.KindDataStore, "etcd")
	}
	if err == nil {
		s := testenv.DefaultSettings()
		s.Plugins = []settings.Plugin{plugin}
		// /metrics tells when the controller has handled every event (settled).
		var port int
		if port, err = testenv.FreePort(); err == nil {
			metricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
			s.MetricsBindAddress = fmt.Sprintf("127.0.0.1:%d", port)
			env, err = testenv.StartEnv(ctx, s, testenv.Options{Now: now})
		}
	}
	cancel()
	code := testenv.RunTests(m, env, err)
	os.RemoveAll(dir)
	os.Exit(code)
}

func ctxT(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// eventually polls cond until it holds; the message says what was waited for.
func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(ctxT(t), 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
	}
}

func dataStoreFor(name string, e *testkit.Etcd) *kamajiv1alpha1.DataStore {
	return testdatastore.Etcd(name, e)
}

func newTCP(namespace, name string, labels map[string]string) *kamajiv1alpha1.TenantControlPlane {
	return &kamajiv1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Spec: kamajiv1alpha1.TenantControlPlaneSpec{
			DataStore:    "default",
			ControlPlane: kamajiv1alpha1.ControlPlane{Service: kamajiv1alpha1.ServiceSpec{ServiceType: "ClusterIP"}},
			Kubernetes:   kamajiv1alpha1.KubernetesSpec{Version: "v1.37.2"},
		},
	}
}

func generator(name string, spec kamajiv1alpha1.KubeconfigGeneratorSpec) *kamajiv1alpha1.KubeconfigGenerator {
	return &kamajiv1alpha1.KubeconfigGenerator{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
}

func str(s string) kamajiv1alpha1.CompoundValue { return kamajiv1alpha1.CompoundValue{StringValue: s} }
func from(p string) kamajiv1alpha1.CompoundValue {
	return kamajiv1alpha1.CompoundValue{FromDefinition: p}
}

func getSecret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	return s, env.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, s)
}

func mustSecret(t *testing.T, namespace, name string) *corev1.Secret {
	t.Helper()
	s, err := getSecret(ctxT(t), namespace, name)
	if err != nil {
		t.Fatalf("Secret %s/%s: %v", namespace, name, err)
	}
	return s
}

func getGenerator(ctx context.Context, t *testing.T, name string) *kamajiv1alpha1.KubeconfigGenerator {
	g := &kamajiv1alpha1.KubeconfigGenerator{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, g); err != nil {
		t.Fatal(err)
	}
	return g
}

// waitStatus waits for the generator's status to be the wanted counts with errors for exactly
// the given resources, and returns it.
func waitStatus(t *testing.T, name string, resources, available int, errored ...string) kamajiv1alpha1.KubeconfigGeneratorStatus {
	t.Helper()
	var st kamajiv1alpha1.KubeconfigGeneratorStatus
	eventually(t, fmt.Sprintf("%s status: %d resources, %d available, errors for %v", name, resources, available, errored), func(ctx context.Context) (bool, error) {
		st = getGenerator(ctx, t, name).Status
		var got []string
		for _, e := range st.Errors {
			got = append(got, e.Resource)
		}
		return st.Resources == resources && st.AvailableResources == available && slices.Equal(got, errored), fmt.Errorf("status %+v", st)
	})
	return st
}

func waitSecret(t *testing.T, namespace, name string) *corev1.Secret {
	t.Helper()
	var s *corev1.Secret
	eventually(t, "Secret "+namespace+"/"+name, func(ctx context.Context) (bool, error) {
		var err error
		s, err = getSecret(ctx, namespace, name)
		return err == nil, err
	})
	return s
}

func waitGone(t *testing.T, namespace, name string) {
	t.Helper()
	eventually(t, "Secret "+namespace+"/"+name+" to be deleted", func(ctx context.Context) (bool, error) {
		_, err := getSecret(ctx, namespace, name)
		return apierrors.IsNotFound(err), err
	})
}

// generated is what a generated kubeconfig says.
type generated struct {
	server string
	caPEM  []byte
	cert   *x509.Certificate
}

func readKubeconfig(t *testing.T, s *corev1.Secret) generated {
	t.Helper()
	if len(s.Data) != 1 || len(s.Data[kcg.SecretKey]) == 0 {
		t.Fatalf("Secret %s: want exactly the key %q, got %d keys", s.Name, kcg.SecretKey, len(s.Data))
	}
	cfg, err := clientcmd.Load(s.Data[kcg.SecretKey])
	if err != nil {
		t.Fatalf("Secret %s: %v", s.Name, err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || cfg.Clusters[ctx.Cluster] == nil || cfg.AuthInfos[ctx.AuthInfo] == nil {
		t.Fatalf("Secret %s: incomplete current context %q", s.Name, cfg.CurrentContext)
	}
	cert, err := pki.ParseCert(cfg.AuthInfos[ctx.AuthInfo].ClientCertificateData)
	if err != nil {
		t.Fatalf("Secret %s: %v", s.Name, err)
	}
	if _, err := pki.ParseKeyPair(cfg.AuthInfos[ctx.AuthInfo].ClientCertificateData, cfg.AuthInfos[ctx.AuthInfo].ClientKeyData); err != nil {
		t.Fatalf("Secret %s: the client key does not match: %v", s.Name, err)
	}
	c := cfg.Clusters[ctx.Cluster]
	return generated{server: c.Server, caPEM: c.CertificateAuthorityData, cert: cert}
}

// tenantCA is the CA the TCP controller keeps for the tenant.
func tenantCA(t *testing.T, namespace, tcp string) *x509.Certificate {
	t.Helper()
	ca, err := pki.ParseCert(mustSecret(t, namespace, tcp+"-ca").Data[tenantpki.KeyCACert])
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// adminServer is the server of one key of the TCP's admin kubeconfig.
func adminServer(t *testing.T, namespace, tcp, key string) string {
	t.Helper()
	cfg, err := clientcmd.Load(mustSecret(t, namespace, tcp+"-admin-kubeconfig").Data[key])
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster].Server
}

// checkKubeconfig asserts the Secret is the generator's for the TCP: labels, owner, a client
// certificate for user/groups that verifies against the tenant CA, the tenant CA as the
// cluster's, and the server.
func checkKubeconfig(t *testing.T, s *corev1.Secret, gen, namespace, tcp, user string, groups []string, server string) generated {
	t.Helper()
	g := readKubeconfig(t, s)
	ca := tenantCA(t, namespace, tcp)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := g.cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: now()}); err != nil {
		t.Errorf("%s: the client certificate does not verify against the tenant CA: %v", s.Name, err)
	}
	if g.cert.Subject.CommonName != user {
		t.Errorf("%s: CN %q, want %q", s.Name, g.cert.Subject.CommonName, user)
	}
	// A certificate's O is a DER SET: it comes back sorted by its encoding, not in spec order.
	o, want := slices.Clone(g.cert.Subject.Organization), slices.Clone(groups)
	slices.Sort(o)
	slices.Sort(want)
	if !slices.Equal(o, want) {
		t.Errorf("%s: O %v, want %v", s.Name, o, want)
	}
	if ca2, err := pki.ParseCert(g.caPEM); err != nil || !ca2.Equal(ca) {
		t.Errorf("%s: the cluster's CA is not the tenant CA (%v)", s.Name, err)
	}
	if g.server != server {
		t.Errorf("%s: server %q, want %q", s.Name, g.server, server)
	}
	labels := map[string]string{kamajiv1alpha1.ManagedByLabel: "kamaji", kamajiv1alpha1.NameLabel: tcp, kamajiv1alpha1.KubeconfigGeneratorLabel: gen}
	for k, v := range labels {
		if s.Labels[k] != v {
			t.Errorf("%s: label %s=%q, want %q", s.Name, k, s.Labels[k], v)
		}
	}
	if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].Kind != "KubeconfigGenerator" || s.OwnerReferences[0].Name != gen {
		t.Errorf("%s: owner references %+v", s.Name, s.OwnerReferences)
	}
	return g
}

func labelNamespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ns := &corev1.Namespace{}
		if err := env.Client.Get(ctxT(t), client.ObjectKey{Name: name}, ns); err != nil {
			return err
		}
		ns.Labels = labels
		return env.Client.Update(ctxT(t), ns)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func updateTCP(t *testing.T, namespace, name string, change func(*kamajiv1alpha1.TenantControlPlane)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		tcp := &kamajiv1alpha1.TenantControlPlane{}
		if err := env.Client.Get(ctxT(t), client.ObjectKey{Namespace: namespace, Name: name}, tcp); err != nil {
			return err
		}
		change(tcp)
		return env.Client.Update(ctxT(t), tcp)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func updateGenerator(t *testing.T, name string, change func(*kamajiv1alpha1.KubeconfigGenerator)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		g := getGenerator(ctxT(t), t, name)
		change(g)
		return env.Client.Update(ctxT(t), g)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestKubeconfigGenerator(t *testing.T) {
	etcd := testkit.StartEtcd(t)
	if err := env.Client.Create(ctxT(t), dataStoreFor("default", etcd)); err != nil {
		t.Fatal(err)
	}
	// team-a is gold, team-b is not (yet); a1 and b1 are prod, a2 is dev.
	for name, labels := range map[string]map[string]string{"team-a": {"tier": "gold"}, "team-b": {"tier": "silver"}} {
		if err := env.Client.Create(ctxT(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}); err != nil {
			t.Fatal(err)
		}
	}
	tcps := []*kamajiv1alpha1.TenantControlPlane{
		newTCP("team-a", "a1", map[string]string{"env": "prod", "owner": "alice"}),
		newTCP("team-a", "a2", map[string]string{"env": "dev"}),
		newTCP("team-b", "b1", map[string]string{"env": "prod"}),
	}
	for _, tcp := range tcps {
		if err := env.Client.Create(ctxT(t), tcp); err != nil {
			t.Fatal(err)
		}
	}
	for _, tcp := range tcps {
		eventually(t, tcp.Name+"'s CA and admin kubeconfig", func(ctx context.Context) (bool, error) {
			got := &kamajiv1alpha1.TenantControlPlane{}
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(tcp), got); err != nil {
				return false, err
			}
			_, err := getSecret(ctx, tcp.Namespace, tcp.Name+"-ca")
			return got.Status.KubeConfig.Admin.SecretName != "" && err == nil, fmt.Errorf("conditions %v", got.Status.Conditions)
		})
	}

	// gold-prod: both selectors, a user from the TCP, a static and a dynamic group.
	gold := generator("gold-prod", kamajiv1alpha1.KubeconfigGeneratorSpec{
		NamespaceSelector:          metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}},
		TenantControlPlaneSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: metav1.LabelSelectorOpIn, Values: []string{"prod"}}}},
		User:                       from("metadata.name"),
		Groups:                     []kamajiv1alpha1.CompoundValue{str("kamaji:tenants"), from("metadata.namespace")},
	})
	if err := env.Client.Create(ctxT(t), gold); err != nil {
		t.Fatal(err)
	}

	t.Run("both selectors pick the TCPs; fromDefinition and stringValue make the identity", func(t *testing.T) {
		g := getGenerator(ctxT(t), t, "gold-prod")
		if g.Spec.ControlPlaneEndpointFrom != "admin.svc" {
			t.Errorf("controlPlaneEndpointFrom defaulted to %q, want admin.svc", g.Spec.ControlPlaneEndpointFrom)
		}
		st := waitStatus(t, "gold-prod", 1, 1)
		if len(st.Errors) != 0 {
			t.Errorf("errors %v", st.Errors)
		}
		s := waitSecret(t, "team-a", "a1-gold-prod")
		checkKubeconfig(t, s, "gold-prod", "team-a", "a1", "a1", []string{"kamaji:tenants", "team-a"}, adminServer(t, "team-a", "a1", "admin.svc"))
		if want := "https://a1.team-a.svc:6443"; adminServer(t, "team-a", "a1", "admin.svc") != want {
			t.Errorf("admin.svc server %q, want %q", adminServer(t, "team-a", "a1", "admin.svc"), want)
		}
		for _, other := range []struct{ ns, name string }{{"team-a", "a2-gold-prod"}, {"team-b", "b1-gold-prod"}} {
			if _, err := getSecret(ctxT(t), other.ns, other.name); !apierrors.IsNotFound(err) {
				t.Errorf("%s/%s: %v, want NotFound (not selected)", other.ns, other.name, err)
			}
		}
	})

	t.Run("nothing is rewritten when nothing changed", func(t *testing.T) {
		before := mustSecret(t, "team-a", "a1-gold-prod")
		done := reconciles(t)
		updateGenerator(t, "gold-prod", func(g *kamajiv1alpha1.KubeconfigGenerator) {
			g.Annotations = map[string]string{"test/touch": "1"}
		})
		settled(t, done)
		if after := mustSecret(t, "team-a", "a1-gold-prod"); after.ResourceVersion != before.ResourceVersion {
			t.Errorf("the Secret was rewritten: resourceVersion %s → %s", before.ResourceVersion, after.ResourceVersion)
		}
	})

	t.Run("controlPlaneEndpointFrom and empty selectors", func(t *testing.T) {
		all := generator("ops", kamajiv1alpha1.KubeconfigGeneratorSpec{User: str("ops"), ControlPlaneEndpointFrom: "admin.conf"})
		if err := env.Client.Create(ctxT(t), all); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, "ops", 3, 3)
		for _, tcp := range tcps {
			s := waitSecret(t, tcp.Namespace, tcp.Name+"-ops")
			g := checkKubeconfig(t, s, "ops", tcp.Namespace, tcp.Name, "ops", nil, adminServer(t, tcp.Namespace, tcp.Name, "admin.conf"))
			if strings.Contains(g.server, ".svc") {
				t.Errorf("%s: server %s is the Service, want the public endpoint", s.Name, g.server)
			}
		}
		updateGenerator(t, "ops", func(g *kamajiv1alpha1.KubeconfigGenerator) { g.Spec.ControlPlaneEndpointFrom = "nope.conf" })
		st := waitStatus(t, "ops", 3, 0, "team-a/a1", "team-a/a2", "team-b/b1")
		if !strings.Contains(st.Errors[0].Message, `no key "nope.conf"`) {
			t.Errorf("message %q does not name the missing key", st.Errors[0].Message)
		}
		if err := env.Client.Delete(ctxT(t), getGenerator(ctxT(t), t, "ops")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a fromDefinition path that does not exist is reported, then fixed", func(t *testing.T) {
		bad := generator("bad-path", kamajiv1alpha1.KubeconfigGeneratorSpec{
			NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}},
			User:              from("metadata.labels.owner"),
			Groups:            []kamajiv1alpha1.CompoundValue{from("spec.no.such.field")},
		})
		if err := env.Client.Create(ctxT(t), bad); err != nil {
			t.Fatal(err)
		}
		// a1 has the owner label but not the group's field; a2 has neither.
		st := waitStatus(t, "bad-path", 2, 0, "team-a/a1", "team-a/a2")
		if m := st.Errors[0].Message; !strings.Contains(m, "spec.groups[0]") || !strings.Contains(m, `"spec.no"`) {
			t.Errorf("a1's message %q names neither the value nor the missing field", m)
		}
		if m := st.Errors[1].Message; !strings.Contains(m, "spec.user") || !strings.Contains(m, `"metadata.labels.owner"`) {
			t.Errorf("a2's message %q names neither the value nor the missing field", m)
		}
		updateGenerator(t, "bad-path", func(g *kamajiv1alpha1.KubeconfigGenerator) {
			g.Spec.Groups = []kamajiv1alpha1.CompoundValue{from("spec.kubernetes.version")}
		})
		waitStatus(t, "bad-path", 2, 1, "team-a/a2")
		checkKubeconfig(t, waitSecret(t, "team-a", "a1-bad-path"), "bad-path", "team-a", "a1", "alice", []string{"v1.37.2"}, adminServer(t, "team-a", "a1", "admin.svc"))

		// The user follows the TCP: a new owner label reissues the certificate.
		updateTCP(t, "team-a", "a1", func(x *kamajiv1alpha1.TenantControlPlane) { x.Labels["owner"] = "bob" })
		eventually(t, "the certificate reissued for bob", func(ctx context.Context) (bool, error) {
			s, err := getSecret(ctx, "team-a", "a1-bad-path")
			if err != nil {
				return false, err
			}
			return readKubeconfig(t, s).cert.Subject.CommonName == "bob", nil
		})
		if err := env.Client.Delete(ctxT(t), getGenerator(ctxT(t), t, "bad-path")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a Secret deleted by hand is restored", func(t *testing.T) {
		if err := env.Client.Delete(ctxT(t), mustSecret(t, "team-a", "a1-gold-prod")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the Secret back", func(ctx context.Context) (bool, error) {
			s, err := getSecret(ctx, "team-a", "a1-gold-prod")
			return err == nil && s.DeletionTimestamp.IsZero(), err
		})
		checkKubeconfig(t, mustSecret(t, "team-a", "a1-gold-prod"), "gold-prod", "team-a", "a1", "a1", []string{"kamaji:tenants", "team-a"}, adminServer(t, "team-a", "a1", "admin.svc"))
	})

	t.Run("rotate and paused annotations on the Secret", func(t *testing.T) {
		annotate := func(change func(s *corev1.Secret)) {
			t.Helper()
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				s := mustSecret(t, "team-a", "a1-gold-prod")
				change(s)
				return env.Client.Update(ctxT(t), s)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		old := readKubeconfig(t, mustSecret(t, "team-a", "a1-gold-prod")).cert
		annotate(func(s *corev1.Secret) {
			s.Annotations = map[string]string{kamajiv1alpha1.RotateCertificatesAnnotation: "now"}
		})
		eventually(t, "a new certificate and the request removed", func(ctx context.Context) (bool, error) {
			s, err := getSecret(ctx, "team-a", "a1-gold-prod")
			if err != nil {
				return false, err
			}
			_, pending := s.Annotations[kamajiv1alpha1.RotateCertificatesAnnotation]
			return !pending && readKubeconfig(t, s).cert.SerialNumber.Cmp(old.SerialNumber) != 0, nil
		})

		done := reconciles(t)
		annotate(func(s *corev1.Secret) {
			s.Annotations = map[string]string{kamajiv1alpha1.PausedAnnotation: ""}
			s.Data[kcg.SecretKey] = []byte("edited by hand")
		})
		settled(t, done)
		if s := mustSecret(t, "team-a", "a1-gold-prod"); string(s.Data[kcg.SecretKey]) != "edited by hand" {
			t.Fatal("a paused Secret was rewritten")
		}
		annotate(func(s *corev1.Secret) { delete(s.Annotations, kamajiv1alpha1.PausedAnnotation) })
		eventually(t, "the Secret restored once resumed", func(ctx context.Context) (bool, error) {
			s, err := getSecret(ctx, "team-a", "a1-gold-prod")
			return err == nil && string(s.Data[kcg.SecretKey]) != "edited by hand", err
		})
		checkKubeconfig(t, mustSecret(t, "team-a", "a1-gold-prod"), "gold-prod", "team-a", "a1", "a1", []string{"kamaji:tenants", "team-a"}, adminServer(t, "team-a", "a1", "admin.svc"))
	})

	t.Run("renewed when the clock passes the expiration deadline", func(t *testing.T) {
		old := readKubeconfig(t, mustSecret(t, "team-a", "a1-gold-prod")).cert
		if d := old.NotAfter.Sub(now()); d < 300*24*time.Hour {
			t.Fatalf("a fresh certificate valid for %s only", d)
		}
		// 12h before expiry: inside the 24h deadline.
		shift := time.Until(old.NotAfter) - 12*time.Hour
		advanceClock(shift)
		t.Cleanup(func() { advanceClock(-shift) })
		updateGenerator(t, "gold-prod", func(g *kamajiv1alpha1.KubeconfigGenerator) {
			g.Annotations = map[string]string{"test/touch": "2"}
		})
		eventually(t, "a renewed certificate", func(ctx context.Context) (bool, error) {
			s, err := getSecret(ctx, "team-a", "a1-gold-prod")
			if err != nil {
				return false, err
			}
			return readKubeconfig(t, s).cert.NotAfter.After(old.NotAfter), nil
		})
		g := checkKubeconfig(t, mustSecret(t, "team-a", "a1-gold-prod"), "gold-prod", "team-a", "a1", "a1", []string{"kamaji:tenants", "team-a"}, adminServer(t, "team-a", "a1", "admin.svc"))
		if d := g.cert.NotAfter.Sub(now()); d < 300*24*time.Hour {
			t.Errorf("the renewed certificate is valid for %s only", d)
		}
	})

	t.Run("a TCP that stops matching loses its Secret; a namespace that starts matching gets one", func(t *testing.T) {
		updateTCP(t, "team-a", "a1", func(x *kamajiv1alpha1.TenantControlPlane) { x.Labels["env"] = "staging" })
		waitGone(t, "team-a", "a1-gold-prod")
		waitStatus(t, "gold-prod", 0, 0)

		labelNamespace(t, "team-b", map[string]string{"tier": "gold"})
		waitStatus(t, "gold-prod", 1, 1)
		checkKubeconfig(t, waitSecret(t, "team-b", "b1-gold-prod"), "gold-prod", "team-b", "b1", "b1", []string{"kamaji:tenants", "team-b"}, adminServer(t, "team-b", "b1", "admin.svc"))

		// A deleted TCP loses it too.
		b1 := &kamajiv1alpha1.TenantControlPlane{}
		if err := env.Client.Get(ctxT(t), client.ObjectKey{Namespace: "team-b", Name: "b1"}, b1); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Delete(ctxT(t), b1); err != nil {
			t.Fatal(err)
		}
		waitGone(t, "team-b", "b1-gold-prod")
		waitStatus(t, "gold-prod", 0, 0)
	})

	t.Run("a Secret of the same name that is not the generator's is left alone", func(t *testing.T) {
		// "<tcp>-ca" is the tenant CA: a generator named ca must not write over it.
		before := mustSecret(t, "team-a", "a2-ca")
		clash := generator("ca", kamajiv1alpha1.KubeconfigGeneratorSpec{
			TenantControlPlaneSelector: metav1.LabelSelector{MatchLabels: map[string]string{"env": "dev"}},
			User:                       str("x"),
		})
		if err := env.Client.Create(ctxT(t), clash); err != nil {
			t.Fatal(err)
		}
		st := waitStatus(t, "ca", 1, 0, "team-a/a2")
		if !strings.Contains(st.Errors[0].Message, "not this generator's") {
			t.Errorf("message %q", st.Errors[0].Message)
		}
		after := mustSecret(t, "team-a", "a2-ca")
		if after.ResourceVersion != before.ResourceVersion || len(after.Data[tenantpki.KeyCAKey]) == 0 {
			t.Error("the tenant CA Secret was touched")
		}
	})
}

func TestRejectedByCEL(t *testing.T) {
	valid := func() *kamajiv1alpha1.KubeconfigGenerator {
		return generator("cel", kamajiv1alpha1.KubeconfigGeneratorSpec{
			User:   from("metadata.name"),
			Groups: []kamajiv1alpha1.CompoundValue{str("g"), from("metadata.namespace")},
		})
	}
	if err := env.Client.Create(ctxT(t), valid(), client.DryRunAll); err != nil {
		t.Fatalf("a valid generator was refused: %v", err)
	}
	const msg = "Either stringValue or fromDefinition must be set, but not both."
	for _, c := range []struct {
		name  string
		field string
		edit  func(*kamajiv1alpha1.KubeconfigGenerator)
	}{
		{"user with both", "spec.user", func(g *kamajiv1alpha1.KubeconfigGenerator) {
			g.Spec.User = kamajiv1alpha1.CompoundValue{StringValue: "a", FromDefinition: "metadata.name"}
		}},
		{"user with neither", "spec.user", func(g *kamajiv1alpha1.KubeconfigGenerator) { g.Spec.User = kamajiv1alpha1.CompoundValue{} }},
		{"a group with both", "spec.groups[1]", func(g *kamajiv1alpha1.KubeconfigGenerator) {
			g.Spec.Groups[1] = kamajiv1alpha1.CompoundValue{StringValue: "a", FromDefinition: "metadata.name"}
		}},
		{"a group with neither", "spec.groups[0]", func(g *kamajiv1alpha1.KubeconfigGenerator) { g.Spec.Groups[0] = kamajiv1alpha1.CompoundValue{} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := valid()
			c.edit(g)
			err := env.Client.Create(ctxT(t), g, client.DryRunAll)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want Invalid, got %v", err)
			}
			for _, want := range []string{c.field, msg} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("rejection %q does not mention %q", err.Error(), want)
				}
			}
		})
	}
}

func TestServedAsKamajiServesIt(t *testing.T) {
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := env.Client.Get(ctxT(t), client.ObjectKey{Name: "kubeconfiggenerators.kamaji.clastix.io"}, crd); err != nil {
		t.Fatal(err)
	}
	if crd.Spec.Scope != apiextensionsv1.ClusterScoped || !slices.Equal(crd.Spec.Names.ShortNames, []string{"kc"}) {
		t.Errorf("scope %s, short names %v; want Cluster, [kc]", crd.Spec.Scope, crd.Spec.Names.ShortNames)
	}
	var cols []string
	for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
		cols = append(cols, c.JSONPath)
	}
	if want := []string{".status.resources", ".status.availableResources", ".metadata.creationTimestamp"}; !slices.Equal(cols, want) {
		t.Errorf("printer columns %v, want %v", cols, want)
	}
}

// reconciles is how many reconciles the KubeconfigGenerator controller has finished.
func reconciles(t *testing.T) float64 {
	t.Helper()
	f, err := metricstest.Scrape(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	return f.Sum("controller_runtime_reconcile_total", map[string]string{"controller": "kubeconfiggenerator"})
}

// settled waits until the controller has finished a reconcile beyond done (a count from
// reconciles taken before the change) and has nothing queued or running: the change was seen
// and handled, so what it did not do, it will not do.
func settled(t *testing.T, done float64) {
	t.Helper()
	eventually(t, "the KubeconfigGenerator controller to handle the change", func(ctx context.Context) (bool, error) {
		f, err := metricstest.Scrape(metricsURL)
		if err != nil {
			return false, err
		}
		n := f.Sum("controller_runtime_reconcile_total", map[string]string{"controller": "kubeconfiggenerator"})
		depth, _ := f.Value("workqueue_depth", map[string]string{"name": "kubeconfiggenerator"})
		active, _ := f.Value("controller_runtime_active_workers", map[string]string{"controller": "kubeconfiggenerator"})
		return n > done && depth == 0 && active == 0, fmt.Errorf("%v reconciles (%v before), queue depth %v, active workers %v", n, done, depth, active)
	})
}
