package driver

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"strings"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// maxNameLen bounds a schema and a username. The core's defaults are at most 63 and 32 bytes.
const maxNameLen = 128

// nameChars are the characters a schema and a username may hold. The core's defaults use
// lowercase letters, digits and '_'; '-' and '.' are accepted for names written by hand. '/'
// is not: the prefix "/<schema>/" must be one path segment, or "/a/b/" would sit inside tenant
// "a"'s range. Nor are spaces, commas or control characters, which would end up in flags,
// certificate subjects and log lines.
const nameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."

// checkName applies the rules common to schema and username.
func checkName(field, s string) error {
	switch {
	case s == "":
		return sdk.InvalidField(field, "required")
	case len(s) > maxNameLen:
		return sdk.InvalidField(field, "%d bytes, at most %d", len(s), maxNameLen)
	case s == "." || s == "..":
		// kube-apiserver cleans its --etcd-prefix: "/../" would become "/", every tenant's keys.
		return sdk.InvalidField(field, "must not be %q", s)
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return !strings.ContainsRune(nameChars, r) }); i >= 0 {
		return sdk.InvalidField(field, "%q holds %q: letters, digits, '_', '-' and '.' only", s, s[i:i+1])
	}
	return nil
}

// checkTenant applies every name rule, the DataStore's admin identity included, and returns the
// tenant's key prefix, "/<schema>/".
func checkTenant(cfg datastore.Config, t datastore.Tenant) (string, error) {
	if err := checkName("tenant.schema", t.Schema); err != nil {
		return "", err
	}
	if err := checkName("tenant.username", t.Username); err != nil {
		return "", err
	}
	for _, admin := range adminUsers(cfg) {
		if t.Username == admin {
			return "", sdk.InvalidField("tenant.username", "must not be %q, an etcd user the DataStore itself uses", admin)
		}
	}
	return "/" + t.Schema + "/", nil
}

// adminUsers are the etcd users a tenant must never be given (the tenant's role is named after
// its user, and DeleteTenant removes both): etcd's root, and the DataStore's own identity, the
// CN of its client certificate or its username.
func adminUsers(cfg datastore.Config) []string {
	out := []string{"root"}
	if block, _ := pem.Decode(cfg.ClientCert); block != nil {
		if c, err := x509.ParseCertificate(block.Bytes); err == nil && c.Subject.CommonName != "" {
			out = append(out, c.Subject.CommonName)
		}
	}
	if cfg.Username != "" {
		out = append(out, cfg.Username)
	}
	return out
}

// ValidateTenant checks t's names offline; the core calls it at admission, so a name this driver
// cannot provision is refused on `kubectl apply`.
func (d *Driver) ValidateTenant(_ context.Context, cfg datastore.Config, t datastore.Tenant) error {
	_, err := checkTenant(cfg, t)
	return err
}
