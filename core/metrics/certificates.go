package metrics

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/tenantpki"
)

var (
	certsCurrent = gaugeFamily{"kamaji_certificates_current",
		"Number of certificates the manager keeps for the TenantControlPlane (its PKI Secrets and the client certificates of its kubeconfigs).",
		[]string{"namespace", "name"}}
	certExpiryFamily = gaugeFamily{"kamaji_certificate_expiration_timestamp_seconds",
		"When a certificate of the TenantControlPlane expires (its NotAfter, Unix seconds), by the Secret and data key holding it.",
		[]string{"namespace", "name", "secret", "key"}}
)

// certSource is one certificate of a TCP: the Secret holding it and the data key, a PEM
// certificate or a kubeconfig whose user carries one.
type certSource struct {
	secret     func(tcp string) string
	key        string
	kubeconfig bool
}

func pkiSecret(k tenantpki.Kind) func(string) string {
	return func(tcp string) string { return tenantpki.SecretName(tcp, k) }
}

// certSources are the certificates the manager issues and renews for a TCP. The service-account
// Secret holds a bare key pair, the .svc kubeconfigs repeat the credentials of their public
// twins, and the datastore Secret's ca.crt is the DataStore's own CA: none is listed.
var certSources = []certSource{
	{secret: pkiSecret(tenantpki.CA), key: tenantpki.KeyCACert},
	{secret: pkiSecret(tenantpki.FrontProxyCA), key: tenantpki.KeyFrontProxyCACert},
	{secret: pkiSecret(tenantpki.APIServer), key: tenantpki.KeyAPIServerCert},
	{secret: pkiSecret(tenantpki.APIServerKubeletClient), key: tenantpki.KeyAPIServerKubeletClientCert},
	{secret: pkiSecret(tenantpki.FrontProxyClient), key: tenantpki.KeyFrontProxyClientCert},
	{secret: pkiSecret(tenantpki.Datastore), key: tenantpki.KeyDatastoreCert},
	{secret: pkiSecret(tenantpki.Konnectivity), key: tenantpki.KeyKonnectivityCert},
	{secret: kubeconfig.AdminSecretName, key: kubeconfig.KeyAdmin, kubeconfig: true},
	{secret: kubeconfig.AdminSecretName, key: kubeconfig.KeySuperAdmin, kubeconfig: true},
	{secret: kubeconfig.ControllerManagerSecretName, key: kubeconfig.KeyControllerManager, kubeconfig: true},
	{secret: kubeconfig.SchedulerSecretName, key: kubeconfig.KeyScheduler, kubeconfig: true},
	{secret: kubeconfig.KonnectivitySecretName, key: kubeconfig.KeyKonnectivity, kubeconfig: true},
}

// certCache holds each certificate's NotAfter, by Secret and data key. The manager's cache keeps
// no Secret data: the expiries are read as it receives each Secret (ObserveSecret), once per
// change, and dropped when the Secret is deleted (ForgetSecret).
type certCache struct {
	mu      sync.Mutex
	secrets map[string]secretCerts // by namespace/name
}

// secretCerts is what is kept of one Secret: its identity and the expiry of each certificate
// (a slice, not a map: a Secret holds one or two, and there are ten thousand at 1,000 TCPs).
type secretCerts struct {
	uid             types.UID
	resourceVersion string
	certs           []certExpiry
}

type certExpiry struct {
	key      string // data key
	notAfter int64  // Unix seconds
}

// notAfter is the expiry of the certificate under key, if one was read.
func (e secretCerts) notAfter(key string) (int64, bool) {
	for _, c := range e.certs {
		if c.key == key {
			return c.notAfter, true
		}
	}
	return 0, false
}

// ObserveSecret records the certificate expiries of s, a Secret the manager's cache receives,
// before the cache drops its data (manager.New).
func ObserveSecret(s *corev1.Secret) { state.certs.observe(s) }

// ForgetSecret drops what was recorded of a deleted Secret (a delete handler of the cache's
// Secret informer).
func ForgetSecret(obj any) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	c := &state.certs
	c.mu.Lock()
	defer c.mu.Unlock()
	key := s.Namespace + "/" + s.Name
	if e, ok := c.secrets[key]; ok && e.uid == s.UID {
		delete(c.secrets, key) // a Secret created again since has another uid: kept
	}
}

// observe parses the certificates certSources list for s's TCP (its name label), if s holds
// any.
func (c *certCache) observe(s *corev1.Secret) {
	tcp := s.Labels[kamajiv1alpha1.NameLabel]
	if tcp == "" {
		return
	}
	key := s.Namespace + "/" + s.Name
	if s.Data == nil {
		// The informer may hand the same object, already without its data, to the transform
		// again: what was read of that version stays.
		c.mu.Lock()
		seen := c.secrets[key].resourceVersion == s.ResourceVersion
		c.mu.Unlock()
		if seen {
			return
		}
	}
	var e *secretCerts
	for _, src := range certSources {
		if src.secret(tcp) != s.Name {
			continue
		}
		if e == nil {
			e = &secretCerts{uid: s.UID, resourceVersion: s.ResourceVersion}
		}
		if t, ok := notAfter(s.Data[src.key], src.kubeconfig); ok {
			e.certs = append(e.certs, certExpiry{key: src.key, notAfter: t.Unix()})
		}
	}
	if e == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.secrets == nil {
		c.secrets = map[string]secretCerts{}
	}
	c.secrets[key] = *e
}

// write exports the certificates of tcps whose Secrets are in secrets (the cache's store of
// Secrets, keyed namespace/name): the expiries, then the count per TCP. The lock is held for one
// TCP's lookups at a time, never while writing: a slow scraper must not stall ObserveSecret,
// which the Secret informer calls.
func (c *certCache) write(t *textWriter, tcps []*kamajiv1alpha1.TenantControlPlane, secrets toolscache.Store) {
	type found struct {
		secret, key string
		notAfter    int64
	}
	certs := make([]found, 0, len(certSources)) // one TCP's, reused
	counts := make([]int, len(tcps))
	t.family(certExpiryFamily)
	for i, tcp := range tcps {
		certs = certs[:0]
		c.mu.Lock()
		for _, src := range certSources {
			name := src.secret(tcp.Name)
			key := tcp.Namespace + "/" + name
			if _, ok, err := secrets.GetByKey(key); err != nil || !ok {
				continue
			}
			if v, ok := c.secrets[key].notAfter(src.key); ok {
				certs = append(certs, found{name, src.key, v})
			}
		}
		c.mu.Unlock()
		counts[i] = len(certs)
		for _, f := range certs {
			t.sample(certExpiryFamily, float64(f.notAfter), tcp.Namespace, tcp.Name, f.secret, f.key)
		}
	}
	t.family(certsCurrent)
	for i, tcp := range tcps {
		t.sample(certsCurrent, float64(counts[i]), tcp.Namespace, tcp.Name)
	}
}

// notAfter reads the expiry of a PEM certificate, or of the client certificate of a
// kubeconfig's current context.
func notAfter(data []byte, isKubeconfig bool) (time.Time, bool) {
	if len(data) == 0 {
		return time.Time{}, false
	}
	if isKubeconfig {
		cfg, err := kubeconfig.Read(data)
		if err != nil {
			return time.Time{}, false
		}
		_, cert, _, ok := cfg.Current()
		if !ok {
			return time.Time{}, false
		}
		data = cert
	}
	t, err := pki.NotAfter(data)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}
