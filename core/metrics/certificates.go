package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/tenantpki"
)

var (
	certsCurrent = prometheus.NewDesc("kamaji_certificates_current",
		"Number of certificates the manager keeps for the TenantControlPlane (its PKI Secrets and the client certificates of its kubeconfigs).",
		[]string{"namespace", "name"}, nil)
	certExpiry = prometheus.NewDesc("kamaji_certificate_expiration_timestamp_seconds",
		"When a certificate of the TenantControlPlane expires (its NotAfter, Unix seconds), by the Secret and data key holding it.",
		[]string{"namespace", "name", "secret", "key"}, nil)
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

// certCache remembers each certificate's NotAfter by the Secret's resourceVersion, so a scrape
// parses only what changed since the last one.
type certCache struct {
	mu      sync.Mutex
	entries map[string]certEntry
}

type certEntry struct {
	resourceVersion string
	notAfter        time.Time
	ok              bool
}

// collect exports the certificates of tcps, read from secrets (the cache's store of Secrets,
// keyed namespace/name).
func (c *certCache) collect(ch chan<- prometheus.Metric, tcps []*kamajiv1alpha1.TenantControlPlane, secrets toolscache.Store) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := make(map[string]certEntry, len(c.entries))
	for _, tcp := range tcps {
		n := 0
		for _, src := range certSources {
			name := src.secret(tcp.Name)
			key := tcp.Namespace + "/" + name
			o, ok, err := secrets.GetByKey(key)
			if err != nil || !ok {
				continue
			}
			s, ok := o.(*corev1.Secret)
			if !ok {
				continue
			}
			id := key + "/" + src.key
			e, cached := c.entries[id]
			if !cached || e.resourceVersion != s.ResourceVersion {
				e = certEntry{resourceVersion: s.ResourceVersion}
				e.notAfter, e.ok = notAfter(s.Data[src.key], src.kubeconfig)
			}
			seen[id] = e
			if !e.ok {
				continue
			}
			n++
			ch <- prometheus.MustNewConstMetric(certExpiry, prometheus.GaugeValue, float64(e.notAfter.Unix()), tcp.Namespace, tcp.Name, name, src.key)
		}
		ch <- prometheus.MustNewConstMetric(certsCurrent, prometheus.GaugeValue, float64(n), tcp.Namespace, tcp.Name)
	}
	c.entries = seen
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
