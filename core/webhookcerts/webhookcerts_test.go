package webhookcerts_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/openhcp/kamaji/core/config"
	"github.com/openhcp/kamaji/core/manager"
	"github.com/openhcp/kamaji/core/testenv"
	"github.com/openhcp/kamaji/core/webhookcerts"
)

const (
	namespace  = "kamaji-system"
	service    = "kamaji-webhook-service"
	secretName = "kamaji-webhook-cert"
	mutating   = "kamaji-mutating-webhook-configuration"
	validating = "kamaji-validating-webhook-configuration"
	validity   = 365 * 24 * time.Hour
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// The chart's case: a bare cluster, webhook configurations without a CA bundle, and a manager
// that issues its own serving certificate.
func TestSelfManagedCertificateIssuedInjectedServedAndRenewed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	plane, err := testenv.Start(ctx, testenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer plane.Stop()
	if err := plane.InstallCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	kc, err := kubernetes.NewForConfig(plane.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	installConfigurations(ctx, t, kc)

	clk := &clock{t: time.Now()}
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	healthPort, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := testenv.DefaultSettings()
	s.LeaderElect = false
	s.PodNamespace, s.WebhookServiceName = namespace, service
	s.WebhookCertSecretName, s.WebhookCertValidity = secretName, validity
	s.WebhookMutatingConfigurationName, s.WebhookValidatingConfigurationName = mutating, validating
	s.HealthProbeBindAddress = "127.0.0.1:" + strconv.Itoa(healthPort)
	s.KubeAPIQPS, s.KubeAPIBurst = 100, 200
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	certDir := filepath.Join(t.TempDir(), "serving-certs") // created by the manager
	mgr, err := manager.New(plane.Config, s, manager.Options{
		WebhookHost: "127.0.0.1", WebhookPort: port, WebhookCertDir: certDir,
		Now: clk.Now, WebhookCertInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	mctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	// Issued: the Secret holds a certificate for the Service, signed by the CA of ca.crt.
	first := waitSecret(ctx, t, kc, func(sec *corev1.Secret) bool { return len(sec.Data[webhookcerts.KeyCert]) > 0 })
	if first.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret type %s, want %s", first.Type, corev1.SecretTypeTLS)
	}
	leaf := parseCert(t, first.Data[webhookcerts.KeyCert])
	wantNames := []string{service, service + "." + namespace, service + "." + namespace + ".svc"}
	if !slices.Equal(leaf.DNSNames, wantNames) {
		t.Errorf("certificate names %v, want %v", leaf.DNSNames, wantNames)
	}
	if got := len(certs(t, first.Data[webhookcerts.KeyCABundle])); got != 1 {
		t.Errorf("ca.crt holds %d certificates, want the one CA", got)
	}

	// Injected into every webhook of both configurations, and served: a client trusting only
	// that bundle (as the apiserver does) completes the handshake for the Service's name.
	waitBundle(ctx, t, kc, first.Data[webhookcerts.KeyCABundle])
	waitServed(ctx, t, addr, first.Data[webhookcerts.KeyCABundle], clk, leaf)
	for _, k := range []string{webhookcerts.KeyCert, webhookcerts.KeyKey, webhookcerts.KeyCABundle} {
		b, err := os.ReadFile(filepath.Join(certDir, k))
		if err != nil || !bytes.Equal(b, first.Data[k]) {
			t.Errorf("%s in the cert dir is not the Secret's (%v)", k, err)
		}
	}
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(healthPort) + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz answered %s once the certificate is served", resp.Status)
	}

	// Renewed before expiry: two thirds of the validity later, a new CA and certificate; the
	// previous CA stays in the bundle, so a replica still serving the previous certificate is
	// trusted until it catches up.
	clk.Advance(validity*2/3 + time.Hour)
	second := waitSecret(ctx, t, kc, func(sec *corev1.Secret) bool {
		return !bytes.Equal(sec.Data[webhookcerts.KeyCert], first.Data[webhookcerts.KeyCert])
	})
	leaf2 := parseCert(t, second.Data[webhookcerts.KeyCert])
	if !leaf2.NotAfter.After(leaf.NotAfter) {
		t.Errorf("renewed certificate expires %s, not after the previous one (%s)", leaf2.NotAfter, leaf.NotAfter)
	}
	bundle := certs(t, second.Data[webhookcerts.KeyCABundle])
	oldCA := certs(t, first.Data[webhookcerts.KeyCABundle])[0]
	if len(bundle) != 2 || bundle[0].Equal(oldCA) || !bundle[1].Equal(oldCA) {
		t.Fatalf("renewed ca.crt: want the new CA then the previous one, got %d certificates", len(bundle))
	}
	if err := verify(leaf, second.Data[webhookcerts.KeyCABundle], clk.Now()); err != nil {
		t.Errorf("the previous certificate is no longer trusted by the renewed bundle: %v", err)
	}
	waitBundle(ctx, t, kc, second.Data[webhookcerts.KeyCABundle])
	waitServed(ctx, t, addr, second.Data[webhookcerts.KeyCABundle], clk, leaf2)

	// Once the previous CA has expired, the bundle drops it; the certificate is not reissued.
	clk.Advance(validity / 3)
	third := waitSecret(ctx, t, kc, func(sec *corev1.Secret) bool {
		return len(certs(t, sec.Data[webhookcerts.KeyCABundle])) == 1
	})
	if !bytes.Equal(third.Data[webhookcerts.KeyCert], second.Data[webhookcerts.KeyCert]) {
		t.Error("the certificate was reissued while two thirds of its validity were not over")
	}
	waitBundle(ctx, t, kc, third.Data[webhookcerts.KeyCABundle])

	// A deleted Secret is issued again; the CA being served stays trusted meanwhile.
	if err := kc.CoreV1().Secrets(namespace).Delete(ctx, secretName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	fourth := waitSecret(ctx, t, kc, func(sec *corev1.Secret) bool {
		return !bytes.Equal(sec.Data[webhookcerts.KeyCert], third.Data[webhookcerts.KeyCert])
	})
	if err := verify(leaf2, fourth.Data[webhookcerts.KeyCABundle], clk.Now()); err != nil {
		t.Errorf("the certificate served before the Secret was deleted is not trusted by the new bundle: %v", err)
	}
	waitBundle(ctx, t, kc, fourth.Data[webhookcerts.KeyCABundle])
	waitServed(ctx, t, addr, fourth.Data[webhookcerts.KeyCABundle], clk, parseCert(t, fourth.Data[webhookcerts.KeyCert]))
}

// installConfigurations creates the generated webhook configurations as the chart renders
// them: renamed, pointed at the chart's Service, no CA bundle.
func installConfigurations(ctx context.Context, t *testing.T, kc kubernetes.Interface) {
	t.Helper()
	muts, vals, err := config.LoadWebhooks()
	if err != nil {
		t.Fatal(err)
	}
	if len(muts) != 1 || len(vals) != 1 {
		t.Fatalf("%d mutating and %d validating configurations generated, want one each", len(muts), len(vals))
	}
	point := func(cc *admissionv1.WebhookClientConfig) {
		cc.Service.Name, cc.Service.Namespace = service, namespace
	}
	m, v := muts[0], vals[0]
	m.Name, v.Name = mutating, validating
	for i := range m.Webhooks {
		point(&m.Webhooks[i].ClientConfig)
	}
	for i := range v.Webhooks {
		point(&v.Webhooks[i].ClientConfig)
	}
	if _, err := kc.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, m, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, v, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func poll(ctx context.Context, t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) { return cond() })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func waitSecret(ctx context.Context, t *testing.T, kc kubernetes.Interface, ok func(*corev1.Secret) bool) *corev1.Secret {
	t.Helper()
	var got *corev1.Secret
	poll(ctx, t, "Secret "+namespace+"/"+secretName, func() (bool, error) {
		sec, err := kc.CoreV1().Secrets(namespace).Get(ctx, secretName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		got = sec
		return ok(sec), nil
	})
	return got
}

// waitBundle waits until every webhook of both configurations carries bundle.
func waitBundle(ctx context.Context, t *testing.T, kc kubernetes.Interface, bundle []byte) {
	t.Helper()
	poll(ctx, t, "the CA bundle in the webhook configurations", func() (bool, error) {
		m, err := kc.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, mutating, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		v, err := kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, validating, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, w := range m.Webhooks {
			if !bytes.Equal(w.ClientConfig.CABundle, bundle) {
				return false, nil
			}
		}
		for _, w := range v.Webhooks {
			if !bytes.Equal(w.ClientConfig.CABundle, bundle) {
				return false, nil
			}
		}
		// The rest of each webhook is the chart's, untouched.
		if len(m.Webhooks) != 1 || m.Webhooks[0].ClientConfig.Service == nil || m.Webhooks[0].ClientConfig.Service.Name != service || len(v.Webhooks) != 2 || v.Webhooks[1].Rules == nil {
			t.Fatalf("the injection changed more than the CA bundle: %+v %+v", m.Webhooks, v.Webhooks)
		}
		return true, nil
	})
}

// waitServed waits until the webhook server presents want to a client that trusts only bundle
// and asks for the Service's name, as the apiserver does.
func waitServed(ctx context.Context, t *testing.T, addr string, bundle []byte, clk *clock, want *x509.Certificate) {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundle) {
		t.Fatal("no certificate in the bundle")
	}
	var last error
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: service + "." + namespace + ".svc", Time: clk.Now})
		if err != nil {
			last = err
			return false, nil
		}
		defer conn.Close()
		last = nil
		return conn.ConnectionState().PeerCertificates[0].Equal(want), nil
	})
	if err != nil {
		t.Fatalf("waiting for the webhook server to serve the certificate: %v (last handshake: %v)", err, last)
	}
}

func verify(leaf *x509.Certificate, bundle []byte, now time.Time) error {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(bundle)
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, DNSName: service + "." + namespace + ".svc"})
	return err
}

func parseCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	c := certs(t, b)
	if len(c) == 0 {
		t.Fatal("no certificate")
	}
	return c[0]
}

func certs(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}
