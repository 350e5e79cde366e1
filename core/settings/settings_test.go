package settings

import (
	"strings"
	"testing"
	"time"

	"github.com/openhcp/kamaji/core/tenantpki"
)

func valid() Settings {
	return Settings{
		MaxConcurrentTCPReconciles: 1, ControllerReconcileTimeout: 30 * time.Second,
		CertificateExpirationDeadline: 24 * time.Hour, KubeAPIQPS: 100, KubeAPIBurst: 200,
		Plugins: []Plugin{{Kind: KindDataStore, Name: "etcd", Path: "/bin/x", SHA256: strings.Repeat("a", 64), Drivers: []string{"etcd"}}},
	}
}

func TestValidateNamesTheKey(t *testing.T) {
	for _, tc := range []struct {
		mutate func(*Settings)
		want   string
	}{
		{func(s *Settings) {}, ""},
		{func(s *Settings) { s.CertificateExpirationDeadline = time.Hour }, "certificate-expiration-deadline"},
		{func(s *Settings) { s.MaxConcurrentTCPReconciles = 0 }, "max-concurrent-tcp-reconciles"},
		{func(s *Settings) { s.MaxStartingControlPlanes = -1 }, "max-starting-control-planes: must not be negative (0: no limit), got -1"},
		{func(s *Settings) { s.KubeAPIQPS = 0 }, "kube-api-qps"},
		{func(s *Settings) { s.KubeAPIBurst = 0 }, "kube-api-burst"},
		{func(s *Settings) { s.CARotationOverlap = -time.Hour }, "ca-rotation-overlap"},
		{func(s *Settings) { s.ShutdownDelay = -time.Second }, "shutdown-delay: must not be negative (0: stop at once), got -1s"},
		{func(s *Settings) { s.CARotationOverlap = 9000 * time.Hour }, "ca-rotation-overlap"},
		{func(s *Settings) { s.Plugins[0].SHA256 = "abc" }, "plugins[0].sha256"},
		{func(s *Settings) { s.Plugins[0].Kind = "storage" }, "plugins[0].kind"},
		{func(s *Settings) { s.Plugins[0].Drivers = nil }, "plugins[0].drivers"},
		{func(s *Settings) { s.Plugins = append(s.Plugins, s.Plugins[0]) }, "plugins[1].name"},
		{func(s *Settings) {
			a := Plugin{Kind: KindAddon, Name: "dns", Path: "/bin/y", SHA256: strings.Repeat("b", 64), Addons: []string{"coredns"}}
			b := a
			b.Name = "dns2"
			s.Plugins = append(s.Plugins, a, b)
		}, "plugins[2].addons"},
		{func(s *Settings) {
			s.Plugins = append(s.Plugins, Plugin{Kind: KindAddon, Name: "dns", Path: "/bin/y", SHA256: strings.Repeat("b", 64)})
		}, "plugins[1].addons"},
		// Self-managed webhook certificates.
		{func(s *Settings) { s.WebhookValidatingConfigurationName = "v" }, "webhook-validating-configuration-name: the CA bundle is injected only with self-managed certificates"},
		{func(s *Settings) { selfManaged(s); s.PodNamespace = "" }, "webhook-cert-secret-name: the Secret lives in pod-namespace, which is empty"},
		{func(s *Settings) { selfManaged(s); s.WebhookServiceName = "" }, "webhook-service-name: required with webhook-cert-secret-name"},
		{func(s *Settings) { selfManaged(s); s.WebhookCertValidity = time.Minute }, "webhook-cert-validity: 1m0s is less than the 1h minimum"},
		{selfManaged, ""},
		// Where tenant apiservers reach the manager's webhooks.
		{func(s *Settings) { s.TenantWebhookURL = "https://kamaji-webhook-service.kamaji-system.svc:443" }, ""},
		{func(s *Settings) { s.TenantWebhookURL = "http://10.0.0.1:9443" }, "tenant-webhook-url: \"http://10.0.0.1:9443\" must be an https URL"},
		{func(s *Settings) { s.TenantWebhookURL = "kamaji-webhook-service:443" }, "tenant-webhook-url:"},
		{func(s *Settings) { s.TenantWebhookURL = "https://10.0.0.1:9443/?a=b" }, "tenant-webhook-url: \"https://10.0.0.1:9443/?a=b\" must not carry"},
	} {
		s := valid()
		tc.mutate(&s)
		err := s.Validate()
		if tc.want == "" && err != nil {
			t.Errorf("unexpected error: %v", err)
		}
		if tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("got %v, want an error starting with %q", err, tc.want)
		}
	}
}

func selfManaged(s *Settings) {
	s.WebhookCertSecretName, s.PodNamespace, s.WebhookServiceName = "kamaji-webhook-cert", "kamaji-system", "kamaji-webhook-service"
	s.WebhookCertValidity = 365 * 24 * time.Hour
	s.WebhookMutatingConfigurationName, s.WebhookValidatingConfigurationName = "m", "v"
}

func TestDriverSet(t *testing.T) {
	s := valid()
	d := s.Drivers()
	if !d.Served("etcd") || d.Served("MySQL") || strings.Join(d.Names(), ",") != "etcd" {
		t.Fatalf("unexpected driver set %v", d)
	}
}

func TestSettingsCheckedTogether(t *testing.T) {
	base := func() *Settings {
		return &Settings{CertificateExpirationDeadline: 24 * time.Hour, MaxConcurrentTCPReconciles: 1, ControllerReconcileTimeout: time.Minute, KubeAPIQPS: 1, KubeAPIBurst: 1, CacheResyncPeriod: 10 * time.Hour}
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	s := base()
	s.CacheResyncPeriod = 72 * time.Hour
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "cache-resync-period: 72h0m0s is not shorter than certificate-expiration-deadline (24h0m0s)") {
		t.Errorf("resync longer than the deadline: %v", err)
	}
	s = base()
	s.CertificateExpirationDeadline = 9000 * time.Hour
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "certificate-expiration-deadline: 9000h0m0s is not shorter than the certificates' validity (8760h0m0s)") {
		t.Errorf("deadline longer than the validity: %v", err)
	}
	if CertificateValidity != tenantpki.DefaultCertValidity {
		t.Errorf("CertificateValidity %s drifted from tenantpki.DefaultCertValidity %s", CertificateValidity, tenantpki.DefaultCertValidity)
	}
}
