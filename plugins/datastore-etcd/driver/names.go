package driver

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// maxNameLen bounds schema and username. A username is also an etcd role and user name, which
// etcd stores as a bbolt key: past 32 KiB the write fails and etcd exits. 255 bytes is far from
// that and from any name a TenantControlPlane needs (the core's defaults have 32 and 63).
const maxNameLen = 255

// Tenant name rules, shared by ValidateTenant, EnsureTenant and DeleteTenant:
//
//   - schema: required; no '/' or NUL (one path segment: "/a/b/" would sit inside tenant "a"'s
//     range); not "." or ".." (kube-apiserver cleans its --etcd-prefix with path.Join, so
//     "/../" would become "/", every tenant's keys);
//   - username: required; not "root" (etcd's root user and role: the tenant's role is named
//     after its user); not the DataStore's admin identity (the CN of clientCert, or username),
//     whose DeleteTenant would remove the admin;
//   - both: valid UTF-8 (the username becomes a certificate CN, which must be UTF-8), no control
//     characters (they end up in flags, certificate subjects and log lines), at most 255 bytes.

// ValidateTenant checks t's names offline (see the rules above).
func (d *Driver) ValidateTenant(_ context.Context, cfg datastore.Config, t datastore.Tenant) error {
	_, err := checkTenant(cfg, t)
	return err
}

// checkTenant applies every name rule, including the admin identity of cfg, and returns t's key
// prefix.
func checkTenant(cfg datastore.Config, t datastore.Tenant) (string, error) {
	prefix, err := tenantPrefix(t)
	if err != nil {
		return "", err
	}
	for _, admin := range adminIdentities(cfg) {
		if t.Username == admin {
			return "", sdk.InvalidField("tenant.username", "must not be %q, the DataStore's own admin user", admin)
		}
	}
	return prefix, nil
}

// tenantPrefix checks t's names, except the admin identity, and returns its key prefix,
// "/<schema>/".
func tenantPrefix(t datastore.Tenant) (string, error) {
	if err := checkName("tenant.schema", t.Schema); err != nil {
		return "", err
	}
	switch {
	case strings.ContainsAny(t.Schema, "/\x00"):
		return "", sdk.InvalidField("tenant.schema", "must not contain '/' or NUL, got %q", t.Schema)
	case t.Schema == "." || t.Schema == "..":
		return "", sdk.InvalidField("tenant.schema", "must not be %q: kube-apiserver would clean the prefix %q to %q", t.Schema, "/"+t.Schema+"/", "/")
	}
	if err := checkName("tenant.username", t.Username); err != nil {
		return "", err
	}
	if t.Username == "root" {
		return "", sdk.InvalidField("tenant.username", "must not be root")
	}
	return "/" + t.Schema + "/", nil
}

func checkName(field, s string) error {
	switch {
	case s == "":
		return sdk.InvalidField(field, "required")
	case len(s) > maxNameLen:
		return sdk.InvalidField(field, "%d bytes, at most %d", len(s), maxNameLen)
	case !utf8.ValidString(s):
		return sdk.InvalidField(field, "not valid UTF-8: %q", s)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return sdk.InvalidField(field, "must not contain control characters, got %q", s)
	}
	return nil
}

// adminIdentities are the etcd users the DataStore authenticates as: the CN of its client
// certificate and its username. An unparsable certificate names none; ValidateConfig reports it.
func adminIdentities(cfg datastore.Config) []string {
	var out []string
	if c, err := parseCert(cfg.ClientCert); err == nil && c.Subject.CommonName != "" {
		out = append(out, c.Subject.CommonName)
	}
	if cfg.Username != "" {
		out = append(out, cfg.Username)
	}
	return out
}
