package manager

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/openhcp/kamaji/core/tenant/writeblock"
	"github.com/openhcp/kamaji/core/webhookcerts"
	"github.com/openhcp/kamaji/core/webhooks"
)

// tenantWebhook locates, for the webhook configurations the core puts in tenants
// (core/tenant/writeblock), this manager's deny handler: tenant-webhook-url and the CA of the
// webhook serving certificate.
type tenantWebhook struct {
	url     string
	caPath  string // webhook-ca-path
	certDir string // webhook-cert-dir
	certs   *webhookcerts.Manager
}

// Get reads the CA on every call: cert-manager and the self-managed certificates rotate it.
// The CA is, in order: the file at webhook-ca-path (the chart points it at the mounted Secret's
// ca.crt, written by cert-manager or by the self-managed certificates), ca.crt in
// webhook-cert-dir, the self-managed CA being served.
func (t tenantWebhook) Get() (writeblock.Webhook, error) {
	if t.url == "" {
		return writeblock.Webhook{}, errors.New("the manager setting tenant-webhook-url is not set: tenant apiservers have no URL to reach the manager's webhook that blocks writes (set it to the https URL of the manager's webhook server as the tenants reach it, such as https://kamaji-webhook-service.kamaji-system.svc:443)")
	}
	var tried []string
	for _, path := range []string{t.caPath, filepath.Join(t.certDir, webhookcerts.KeyCABundle)} {
		if path == "" || path == webhookcerts.KeyCABundle {
			continue
		}
		ca, err := os.ReadFile(path)
		if err == nil && len(ca) > 0 {
			return writeblock.Webhook{URL: strings.TrimSuffix(t.url, "/") + webhooks.TenantDenyPath, CABundle: ca}, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return writeblock.Webhook{}, fmt.Errorf("reading the webhook CA %s: %w", path, err)
		}
		tried = append(tried, path)
	}
	if t.certs != nil {
		if ca := t.certs.CABundle(); len(ca) > 0 {
			return writeblock.Webhook{URL: strings.TrimSuffix(t.url, "/") + webhooks.TenantDenyPath, CABundle: ca}, nil
		}
		tried = append(tried, "the self-managed certificate (not issued yet)")
	}
	return writeblock.Webhook{}, fmt.Errorf("no CA for the manager's webhook serving certificate (webhook-ca-path, or ca.crt in webhook-cert-dir): tried %s", strings.Join(tried, ", "))
}
