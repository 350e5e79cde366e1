package manager

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTenantWebhook(t *testing.T) {
	dir := t.TempDir()
	certDir, caPath := filepath.Join(dir, "certs"), filepath.Join(dir, "mounted-ca.crt")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// Unset: the error names the setting.
	if _, err := (tenantWebhook{caPath: caPath, certDir: certDir}).Get(); err == nil || !strings.Contains(err.Error(), "tenant-webhook-url") {
		t.Errorf("without tenant-webhook-url: %v", err)
	}
	tw := tenantWebhook{url: "https://kamaji-webhook-service.kamaji-system.svc:443/", caPath: caPath, certDir: certDir}
	if _, err := tw.Get(); err == nil || !strings.Contains(err.Error(), caPath) || !strings.Contains(err.Error(), filepath.Join(certDir, "ca.crt")) {
		t.Errorf("without any CA: want both paths named, got %v", err)
	}
	// ca.crt of the cert dir, then webhook-ca-path first.
	write(filepath.Join(certDir, "ca.crt"), "cert-dir CA")
	wh, err := tw.Get()
	if err != nil || string(wh.CABundle) != "cert-dir CA" || wh.URL != "https://kamaji-webhook-service.kamaji-system.svc:443/tenant/deny/" {
		t.Errorf("from the cert dir: %+v %v", wh, err)
	}
	write(caPath, "mounted CA")
	if wh, err := tw.Get(); err != nil || string(wh.CABundle) != "mounted CA" {
		t.Errorf("from webhook-ca-path: %+v %v", wh, err)
	}
}
