package driver

import (
	"context"
	"strings"

	"github.com/nats-io/nkeys"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// ValidateTenant checks, without contacting NATS, the names EnsureTenant would provision. It
// does not need a valid DataStore: a broken one is ValidateConfig's to report.
func (d *Driver) ValidateTenant(_ context.Context, cfg datastore.Config, t datastore.Tenant) error {
	_, err := tenantBucket(cfg, t)
	return err
}

// tenantBucket validates t's schema and username and returns its bucket. EnsureTenant and
// DeleteTenant go through it too.
func tenantBucket(cfg datastore.Config, t datastore.Tenant) (string, error) {
	b, err := bucketName(t)
	if err != nil {
		return "", err
	}
	for _, u := range adminUsers(cfg) {
		if t.Username == u {
			return "", sdk.InvalidField("tenant.username", "%q is the DataStore's own user", t.Username)
		}
	}
	// Unreachable as bucketName builds names ('_' after the prefix, '-' in the registry's):
	// a guard should either change.
	if b == registryBucket || !strings.HasPrefix(b, bucketPrefix) {
		return "", sdk.InvalidField("tenant.schema", "%q would name the owner registry %q", t.Schema, registryBucket)
	}
	return b, nil
}

// adminUsers are the names of the plugin's own identity on the DataStore: the user it mints for
// itself in jwt mode, the DataStore's username (a plain user, or the account's public key) and
// the account of its signing key.
func adminUsers(cfg datastore.Config) []string {
	out := []string{Name}
	if cfg.Username != "" {
		out = append(out, cfg.Username)
	}
	if strings.HasPrefix(cfg.Password, "S") {
		if kp, err := nkeys.FromSeed([]byte(cfg.Password)); err == nil {
			if pub, err := kp.PublicKey(); err == nil {
				out = append(out, pub)
			}
		}
	}
	return out
}
