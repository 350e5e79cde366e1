// Package webhookcerts lets the manager serve its admission webhooks with a certificate it
// issues itself, so the chart installs on a cluster without cert-manager: a self-signed CA and a
// serving certificate for the webhook Service, kept in a Secret of the manager's namespace,
// served from memory, written to the webhook server's cert dir, with the CA injected into the
// named webhook configurations, and reissued once two thirds of the validity have passed.
//
// Every replica serves what the Secret holds; only the leader writes the Secret and the
// configurations. The CA bundle keeps the previous CA until it expires, so a replica still
// serving the previous certificate stays trusted while it catches up.
package webhookcerts

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/pki"
)

// Only the two configurations the chart names (resourceNames in its ClusterRole).
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations;validatingwebhookconfigurations,verbs=get;patch

// Keys of the Secret (type kubernetes.io/tls, as cert-manager writes it).
const (
	KeyCert     = corev1.TLSCertKey       // tls.crt: the serving certificate
	KeyKey      = corev1.TLSPrivateKeyKey // tls.key
	KeyCABundle = "ca.crt"                // the CAs to trust: current first, then the previous one until it expires
)

// DefaultInterval is how often the Secret (and, on the leader, the configurations) is checked.
const DefaultInterval = time.Minute

// Options configure the certificates.
type Options struct {
	// Namespace and SecretName locate the Secret (the manager's namespace).
	Namespace  string
	SecretName string
	// ServiceName is the webhook Service: the certificate is for <svc>, <svc>.<ns>, <svc>.<ns>.svc.
	ServiceName string
	// CertDir receives tls.crt, tls.key and ca.crt (empty: not written).
	CertDir string
	// MutatingConfiguration and ValidatingConfiguration are the configurations whose webhooks
	// get the CA bundle (empty: none).
	MutatingConfiguration   string
	ValidatingConfiguration string
	// Validity of the CA and of the serving certificate.
	Validity time.Duration
	// Interval between checks (DefaultInterval when zero).
	Interval time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	Log logr.Logger
}

// Manager keeps the serving certificate. It is a controller-runtime Runnable that runs on every
// replica (NeedLeaderElection false); it writes only once elected.
type Manager struct {
	o       Options
	client  client.Client
	reader  client.Reader
	elected <-chan struct{}

	mu     sync.RWMutex
	cert   *tls.Certificate
	served map[string][]byte // the Secret data being served
}

// New returns a Manager writing with c and reading with r (uncached: the manager's cache holds
// only the Secrets it owns). elected is closed once this replica leads (mgr.Elected()).
func New(c client.Client, r client.Reader, elected <-chan struct{}, o Options) *Manager {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Manager{o: o, client: c, reader: r, elected: elected}
}

// GetCertificate serves the current certificate (tls.Config.GetCertificate). Until the first
// one is loaded the handshake fails, and so does the manager's readiness check.
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.cert == nil {
		return nil, fmt.Errorf("no webhook serving certificate yet (Secret %s/%s)", m.o.Namespace, m.o.SecretName)
	}
	return m.cert, nil
}

// NeedLeaderElection: every replica serves webhooks, so every replica needs the certificate.
func (m *Manager) NeedLeaderElection() bool { return false }

// Start checks at once, then every Interval (every 2 s while nothing is served yet, and at
// once when this replica becomes the leader), until ctx ends.
func (m *Manager) Start(ctx context.Context) error {
	elected := m.elected
	for {
		if err := m.Sync(ctx); err != nil && ctx.Err() == nil {
			m.o.Log.Error(err, "webhook serving certificate")
		}
		wait := m.o.Interval
		if !m.loaded() && wait > 2*time.Second {
			wait = 2 * time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-elected:
			elected = nil // closed: act on it once
		case <-t.C:
		}
		t.Stop()
	}
}

func (m *Manager) loaded() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.cert != nil
}

func (m *Manager) leading() bool {
	if m.elected == nil {
		return true
	}
	select {
	case <-m.elected:
		return true
	default:
		return false
	}
}

// Sync runs one check: the leader (re)issues the certificate when needed and injects the CA
// bundle; every replica then serves what the Secret holds.
func (m *Manager) Sync(ctx context.Context) error {
	secret := &corev1.Secret{}
	err := m.reader.Get(ctx, types.NamespacedName{Namespace: m.o.Namespace, Name: m.o.SecretName}, secret)
	switch {
	case apierrors.IsNotFound(err):
		secret = nil
	case err != nil:
		return fmt.Errorf("reading Secret %s/%s: %w", m.o.Namespace, m.o.SecretName, err)
	}
	leading := m.leading()
	if leading {
		if secret, err = m.ensureSecret(ctx, secret); err != nil {
			return err
		}
	}
	if secret == nil {
		return nil // the leader has not written it yet
	}
	// Served first: a configuration that cannot be updated must not keep this replica from
	// serving (and being ready).
	if err := m.load(secret.Data); err != nil {
		return err
	}
	if leading {
		return m.inject(ctx, secret.Data[KeyCABundle])
	}
	return nil
}

// ensureSecret writes a new certificate when the Secret has none usable, or one due for
// renewal, and drops expired CAs from the bundle.
func (m *Manager) ensureSecret(ctx context.Context, secret *corev1.Secret) (*corev1.Secret, error) {
	now := m.o.Now()
	var data map[string][]byte
	if secret != nil {
		data = secret.Data
	}
	bundle := validCAs(data[KeyCABundle], now)
	reason := m.reissueReason(data, now)
	if reason == "" {
		if bytes.Equal(pemCerts(bundle), data[KeyCABundle]) {
			return secret, nil
		}
		data = map[string][]byte{KeyCert: data[KeyCert], KeyKey: data[KeyKey], KeyCABundle: pemCerts(bundle)}
		reason = "an expired CA left the bundle"
	} else {
		ca, certPEM, keyPEM, err := issue(now, m.o.Validity, m.dnsNames())
		if err != nil {
			return nil, err
		}
		// The previous CA stays trusted while it is valid: a replica may still serve its
		// certificate. The one being served here counts too, should the Secret be gone.
		prev := append(bundle, validCAs(m.servedBundle(), now)...)
		data = map[string][]byte{KeyCert: certPEM, KeyKey: keyPEM, KeyCABundle: pemCerts(dedupe(append([]*x509.Certificate{ca}, prev...)))}
	}
	want := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: m.o.SecretName, Namespace: m.o.Namespace,
			Labels: map[string]string{"app.kubernetes.io/name": "kamaji", "app.kubernetes.io/component": "webhook-certificate"},
		},
		Type: corev1.SecretTypeTLS,
		Data: data,
	}
	var err error
	if secret == nil {
		err = apply.Apply(ctx, m.client, want)
	} else {
		// Unless someone (another replica that led a moment ago) wrote it since we read it.
		err = apply.ApplyAsIfUnchanged(ctx, m.client, want, apply.FieldManager, secret.ResourceVersion)
	}
	if err != nil {
		return nil, fmt.Errorf("writing Secret %s/%s: %w", m.o.Namespace, m.o.SecretName, err)
	}
	if leaf, err := pki.ParseCert(want.Data[KeyCert]); err == nil {
		m.o.Log.Info("webhook serving certificate written", "secret", m.o.Namespace+"/"+m.o.SecretName, "reason", reason, "notAfter", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return want, nil
}

// reissueReason says why the Secret needs a new certificate, or "".
func (m *Manager) reissueReason(data map[string][]byte, now time.Time) string {
	if len(data) == 0 {
		return "no certificate yet"
	}
	pair, err := tls.X509KeyPair(data[KeyCert], data[KeyKey])
	if err != nil {
		return "the certificate or key is unreadable"
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return "the certificate is unreadable"
	}
	if !slices.Equal(leaf.DNSNames, m.dnsNames()) {
		return "the webhook Service name changed"
	}
	roots := x509.NewCertPool()
	for _, ca := range validCAs(data[KeyCABundle], now) {
		roots.AddCert(ca)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, DNSName: m.dnsNames()[2]}); err != nil {
		return "the certificate does not verify against ca.crt"
	}
	if renewAt := leaf.NotAfter.Add(-leaf.NotAfter.Sub(leaf.NotBefore) / 3); !now.Before(renewAt) {
		return "a third of its validity is left"
	}
	return ""
}

func (m *Manager) dnsNames() []string {
	svc, ns := m.o.ServiceName, m.o.Namespace
	return []string{svc, svc + "." + ns, svc + "." + ns + ".svc"}
}

// CABundle is the CA bundle of the certificate being served (nil until one is): what a client
// of the webhook server trusts.
func (m *Manager) CABundle() []byte { return m.servedBundle() }

func (m *Manager) servedBundle() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.served[KeyCABundle]
}

// inject sets the CA bundle on every webhook of the two configurations that lacks it.
func (m *Manager) inject(ctx context.Context, bundle []byte) error {
	if name := m.o.MutatingConfiguration; name != "" {
		cfg := &admissionv1.MutatingWebhookConfiguration{}
		if err := m.reader.Get(ctx, types.NamespacedName{Name: name}, cfg); err != nil {
			return fmt.Errorf("MutatingWebhookConfiguration %s: %w", name, err)
		}
		want := &admissionv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}}
		stale := false
		for _, w := range cfg.Webhooks {
			stale = stale || !bytes.Equal(w.ClientConfig.CABundle, bundle)
			want.Webhooks = append(want.Webhooks, admissionv1.MutatingWebhook{Name: w.Name, ClientConfig: admissionv1.WebhookClientConfig{CABundle: bundle}})
		}
		if stale {
			if err := apply.Apply(ctx, m.client, want); err != nil {
				return fmt.Errorf("MutatingWebhookConfiguration %s: injecting the CA bundle: %w", name, err)
			}
		}
	}
	if name := m.o.ValidatingConfiguration; name != "" {
		cfg := &admissionv1.ValidatingWebhookConfiguration{}
		if err := m.reader.Get(ctx, types.NamespacedName{Name: name}, cfg); err != nil {
			return fmt.Errorf("ValidatingWebhookConfiguration %s: %w", name, err)
		}
		want := &admissionv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}}
		stale := false
		for _, w := range cfg.Webhooks {
			stale = stale || !bytes.Equal(w.ClientConfig.CABundle, bundle)
			want.Webhooks = append(want.Webhooks, admissionv1.ValidatingWebhook{Name: w.Name, ClientConfig: admissionv1.WebhookClientConfig{CABundle: bundle}})
		}
		if stale {
			if err := apply.Apply(ctx, m.client, want); err != nil {
				return fmt.Errorf("ValidatingWebhookConfiguration %s: injecting the CA bundle: %w", name, err)
			}
		}
	}
	return nil
}

// load serves the Secret's certificate and writes it to the cert dir, when it changed.
func (m *Manager) load(data map[string][]byte) error {
	m.mu.RLock()
	same := m.cert != nil && bytes.Equal(m.served[KeyCert], data[KeyCert]) && bytes.Equal(m.served[KeyKey], data[KeyKey]) &&
		bytes.Equal(m.served[KeyCABundle], data[KeyCABundle])
	m.mu.RUnlock()
	if same {
		return nil
	}
	pair, err := tls.X509KeyPair(data[KeyCert], data[KeyKey])
	if err != nil {
		return fmt.Errorf("Secret %s/%s: %s and %s: %w", m.o.Namespace, m.o.SecretName, KeyCert, KeyKey, err)
	}
	if m.o.CertDir != "" {
		if err := os.MkdirAll(m.o.CertDir, 0o700); err != nil {
			return err
		}
		for _, k := range []string{KeyCert, KeyKey, KeyCABundle} {
			if err := writeAtomic(filepath.Join(m.o.CertDir, k), data[k]); err != nil {
				return err
			}
		}
	}
	m.mu.Lock()
	m.cert = &pair
	m.served = map[string][]byte{KeyCert: data[KeyCert], KeyKey: data[KeyKey], KeyCABundle: data[KeyCABundle]}
	m.mu.Unlock()
	m.o.Log.Info("serving the webhook certificate", "secret", m.o.Namespace+"/"+m.o.SecretName)
	return nil
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// issue creates a CA and a serving certificate for dnsNames, both valid for validity from now.
func issue(now time.Time, validity time.Duration, dnsNames []string) (*x509.Certificate, []byte, []byte, error) {
	caKey, err := pki.NewKey("")
	if err != nil {
		return nil, nil, nil, err
	}
	// Backdated a little: the apiserver's clock may be behind ours.
	notBefore, notAfter := now.Add(-5*time.Minute), now.Add(validity)
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "kamaji-webhook-ca@" + fmt.Sprint(now.Unix())},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, nil, err
	}
	key, err := pki.NewKey("")
	if err != nil {
		return nil, nil, nil, err
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: dnsNames[len(dnsNames)-1]},
		DNSNames:     dnsNames,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), keyPEM, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return n
}

// validCAs decodes the CA certificates of a PEM bundle that are valid at now.
func validCAs(bundle []byte, now time.Time) []*x509.Certificate {
	var out []*x509.Certificate
	for len(bundle) > 0 {
		var b *pem.Block
		b, bundle = pem.Decode(bundle)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil || !c.IsCA || now.After(c.NotAfter) {
			continue
		}
		out = append(out, c)
	}
	return out
}

func dedupe(certs []*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for _, c := range certs {
		if !slices.ContainsFunc(out, func(o *x509.Certificate) bool { return o.Equal(c) }) {
			out = append(out, c)
		}
	}
	return out
}

func pemCerts(certs []*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return buf.Bytes()
}
