// Package settings is the manager's configuration: the flags Kamaji users know, and the plugin
// list of kamaji.yaml. It is plain data with a Validate that names the offending key; the
// command line (cmd/kamaji) fills it from the file, the environment and the flags.
package settings

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Settings of `kamaji manager`. Keys in kamaji.yaml are the flag names.
type Settings struct {
	MetricsBindAddress     string
	HealthProbeBindAddress string
	// PprofBindAddress serves net/http/pprof; "0" or empty disables it.
	PprofBindAddress           string
	LeaderElect                bool
	DataStore                  string
	MaxConcurrentTCPReconciles int
	// MaxStartingControlPlanes: how many control planes may start at once (a first start, a
	// wake, or a scale-up from zero replicas); the others wait their turn with no replica
	// (core/startqueue). 0: no limit.
	MaxStartingControlPlanes      int
	ControllerReconcileTimeout    time.Duration
	CertificateExpirationDeadline time.Duration
	// CARotationOverlap: how long a tenant's previous CA stays trusted after a CA rotation
	// (0: 24h).
	CARotationOverlap  time.Duration
	TmpDirectory       string
	KineImage          string
	MigrateImage       string
	PodNamespace       string
	ServiceAccountName string
	WebhookServiceName string
	WebhookCAPath      string
	CacheResyncPeriod  time.Duration
	DisableTelemetry   bool
	WebhookPort        int
	WebhookCertDir     string
	// TenantWebhookURL is the https base URL at which tenant apiservers reach this manager's
	// webhook server (https://<webhook Service>.<namespace>.svc:443 in a cluster): the webhooks
	// that freeze a migrating tenant and enforce spec.writePermissions call it. Empty: neither
	// can be put in place, and the TCPs that need them say so in a condition.
	TenantWebhookURL string
	// WebhookCertSecretName, when set, has the manager issue its webhook serving certificate
	// itself (core/webhookcerts), kept in this Secret of PodNamespace, for WebhookServiceName,
	// valid WebhookCertValidity, its CA injected into the two named configurations.
	WebhookCertSecretName              string
	WebhookCertValidity                time.Duration
	WebhookMutatingConfigurationName   string
	WebhookValidatingConfigurationName string
	// KubeAPIQPS and KubeAPIBurst bound all the manager's requests to the admin cluster together, on the
	// client side (the apiserver's priority and fairness still applies).
	KubeAPIQPS   float64
	KubeAPIBurst int
	// ShutdownDelay: how long the manager goes on serving (webhooks, wake ports, the leader's
	// controllers) after SIGTERM before it stops (core/manager.SignalContext). 0: it stops at once.
	ShutdownDelay time.Duration

	Plugins []Plugin
}

// PluginKind is what contract a plugin serves.
type PluginKind string

const (
	KindDataStore PluginKind = "datastore"
	KindAddon     PluginKind = "addon"
)

// Plugin is one entry of kamaji.yaml's plugins list.
type Plugin struct {
	Kind PluginKind `json:"kind" mapstructure:"kind"`
	Name string     `json:"name" mapstructure:"name"`
	// Path of the plugin binary.
	Path string `json:"path" mapstructure:"path"`
	// SHA256 of the binary (hex); the core refuses to start a binary that does not match.
	SHA256 string            `json:"sha256" mapstructure:"sha256"`
	Args   []string          `json:"args,omitempty" mapstructure:"args"`
	Env    map[string]string `json:"env,omitempty" mapstructure:"env"`
	// Drivers a datastore plugin serves (checked against the plugin's own report at start).
	Drivers []string `json:"drivers,omitempty" mapstructure:"drivers"`
	// Addons an addon plugin serves.
	Addons []string `json:"addons,omitempty" mapstructure:"addons"`
}

// MinCertificateExpirationDeadline is the shortest renewal deadline accepted.
const MinCertificateExpirationDeadline = 24 * time.Hour

// CertificateValidity is the lifetime of the tenant certificates the core issues (a year; the
// tenantpki package's DefaultCertValidity, which a test keeps equal).
const CertificateValidity = 365 * 24 * time.Hour

// Validate returns the first problem, naming the key.
func (s *Settings) Validate() error {
	if s.CertificateExpirationDeadline < MinCertificateExpirationDeadline {
		return fmt.Errorf("certificate-expiration-deadline: %s is less than the 24h minimum", s.CertificateExpirationDeadline)
	}
	if s.MaxConcurrentTCPReconciles < 1 {
		return fmt.Errorf("max-concurrent-tcp-reconciles: must be at least 1, got %d", s.MaxConcurrentTCPReconciles)
	}
	if s.MaxStartingControlPlanes < 0 {
		return fmt.Errorf("max-starting-control-planes: must not be negative (0: no limit), got %d", s.MaxStartingControlPlanes)
	}
	if s.ControllerReconcileTimeout <= 0 {
		return fmt.Errorf("controller-reconcile-timeout: must be positive, got %s", s.ControllerReconcileTimeout)
	}
	if s.KubeAPIQPS <= 0 {
		return fmt.Errorf("kube-api-qps: must be positive, got %g", s.KubeAPIQPS)
	}
	if s.KubeAPIBurst < 1 {
		return fmt.Errorf("kube-api-burst: must be at least 1, got %d", s.KubeAPIBurst)
	}
	if s.CARotationOverlap < 0 || s.CARotationOverlap >= CertificateValidity {
		return fmt.Errorf("ca-rotation-overlap: %s must be between 0 (the 24h default) and the certificates' validity (%s)", s.CARotationOverlap, CertificateValidity)
	}
	if s.ShutdownDelay < 0 {
		return fmt.Errorf("shutdown-delay: must not be negative (0: stop at once), got %s", s.ShutdownDelay)
	}
	if s.CacheResyncPeriod < 0 {
		return fmt.Errorf("cache-resync-period: must not be negative, got %s", s.CacheResyncPeriod)
	}
	// Checked together: a deadline as long as the certificates live would renew every
	// certificate on every pass, and a resync no shorter than the deadline could pass it by.
	if s.CertificateExpirationDeadline >= CertificateValidity {
		return fmt.Errorf("certificate-expiration-deadline: %s is not shorter than the certificates' validity (%s): every certificate would be renewed on every reconcile",
			s.CertificateExpirationDeadline, CertificateValidity)
	}
	if s.CacheResyncPeriod >= s.CertificateExpirationDeadline {
		return fmt.Errorf("cache-resync-period: %s is not shorter than certificate-expiration-deadline (%s): a certificate could expire between two resyncs",
			s.CacheResyncPeriod, s.CertificateExpirationDeadline)
	}
	if err := s.validateWebhookCerts(); err != nil {
		return err
	}
	if err := validateTenantWebhookURL(s.TenantWebhookURL); err != nil {
		return err
	}
	names := map[string]bool{}
	for i, p := range s.Plugins {
		key := fmt.Sprintf("plugins[%d]", i)
		switch {
		case p.Name == "":
			return fmt.Errorf("%s.name: required", key)
		case names[p.Name]:
			return fmt.Errorf("%s.name: %q is listed twice", key, p.Name)
		case p.Kind != KindDataStore && p.Kind != KindAddon:
			return fmt.Errorf("%s.kind: must be %q or %q, got %q", key, KindDataStore, KindAddon, p.Kind)
		case p.Path == "":
			return fmt.Errorf("%s.path: required", key)
		case !isSHA256(p.SHA256):
			return fmt.Errorf("%s.sha256: must be the 64 hex digits of the binary's SHA-256 (sha256sum %s)", key, p.Path)
		case p.Kind == KindDataStore && len(p.Drivers) == 0:
			return fmt.Errorf("%s.drivers: a datastore plugin must list the drivers it serves", key)
		case p.Kind == KindAddon && len(p.Addons) == 0:
			return fmt.Errorf("%s.addons: an addon plugin must list the addons it serves", key)
		}
		names[p.Name] = true
	}
	seen := map[string]string{}
	addons := map[string]string{}
	for i, p := range s.Plugins {
		for _, d := range p.Drivers {
			if other, dup := seen[d]; dup {
				return fmt.Errorf("plugins[%d].drivers: driver %q is already served by plugin %q", i, d, other)
			}
			seen[d] = p.Name
		}
		for _, a := range p.Addons {
			if other, dup := addons[a]; dup {
				return fmt.Errorf("plugins[%d].addons: addon %q is already served by plugin %q", i, a, other)
			}
			addons[a] = p.Name
		}
	}
	return nil
}

// MinWebhookCertValidity is the shortest validity accepted for self-managed webhook certificates.
const MinWebhookCertValidity = time.Hour

func (s *Settings) validateWebhookCerts() error {
	if s.WebhookCertSecretName == "" {
		for _, kv := range [][2]string{
			{"webhook-mutating-configuration-name", s.WebhookMutatingConfigurationName},
			{"webhook-validating-configuration-name", s.WebhookValidatingConfigurationName},
		} {
			if kv[1] != "" {
				return fmt.Errorf("%s: the CA bundle is injected only with self-managed certificates: set webhook-cert-secret-name too", kv[0])
			}
		}
		return nil
	}
	switch {
	case s.PodNamespace == "":
		return fmt.Errorf("webhook-cert-secret-name: the Secret lives in pod-namespace, which is empty (set it, or POD_NAMESPACE)")
	case s.WebhookServiceName == "":
		return fmt.Errorf("webhook-service-name: required with webhook-cert-secret-name (the certificate is for that Service)")
	case s.WebhookCertValidity < MinWebhookCertValidity:
		return fmt.Errorf("webhook-cert-validity: %s is less than the 1h minimum", s.WebhookCertValidity)
	}
	return nil
}

// validateTenantWebhookURL checks what the tenant apiservers' webhook validation would refuse.
func validateTenantWebhookURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	switch {
	case err != nil:
		return fmt.Errorf("tenant-webhook-url: %q is no URL: %v", v, err)
	case u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("tenant-webhook-url: %q must be an https URL with a host, such as https://kamaji-webhook-service.kamaji-system.svc:443", v)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("tenant-webhook-url: %q must not carry user information, a query or a fragment (a webhook URL may not)", v)
	}
	return nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	return strings.Trim(strings.ToLower(s), "0123456789abcdef") == ""
}

// DriverSet is the set of drivers served by the configured datastore plugins.
type DriverSet map[string]string

// Drivers indexes the configured datastore plugins by driver.
func (s *Settings) Drivers() DriverSet {
	out := DriverSet{}
	for _, p := range s.Plugins {
		if p.Kind == KindDataStore {
			for _, d := range p.Drivers {
				out[d] = p.Name
			}
		}
	}
	return out
}

// Served reports whether a plugin serves the driver.
func (d DriverSet) Served(driver string) bool { _, ok := d[driver]; return ok }

// Names lists the served drivers, sorted.
func (d DriverSet) Names() []string {
	out := make([]string, 0, len(d))
	for k := range d {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// AddonSet is the set of addons served by the configured addon plugins.
type AddonSet map[string]string

// Addons indexes the configured addon plugins by addon.
func (s *Settings) Addons() AddonSet {
	out := AddonSet{}
	for _, p := range s.Plugins {
		if p.Kind == KindAddon {
			for _, a := range p.Addons {
				out[a] = p.Name
			}
		}
	}
	return out
}

// Served reports whether a plugin serves the addon.
func (a AddonSet) Served(addon string) bool { _, ok := a[addon]; return ok }

// Names lists the served addons, sorted.
func (a AddonSet) Names() []string {
	out := make([]string, 0, len(a))
	for k := range a {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
