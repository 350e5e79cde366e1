package driver

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

const (
	defaultPort = "5432"
	// KineFilesDir is where the core mounts the sidecar's files.
	KineFilesDir = "/etc/kine"
	// KineListen is where the sidecar listens, on the pod's loopback only.
	KineListen = "127.0.0.1:2379"
	// PasswordEnv is the sidecar's environment variable holding the tenant password; the
	// endpoint argument references it as $(KINE_DB_PASSWORD), which the kubelet expands.
	PasswordEnv = "KINE_DB_PASSWORD"
	// maxIdentBytes is PostgreSQL's NAMEDATALEN-1: longer names are silently truncated.
	maxIdentBytes = 63
)

// Parameters understood in DataStore parameters.
const (
	ParamKineImage = "kineImage"
	// ParamSSLMode is libpq's sslmode when the DataStore has no CA (with one, verify-full).
	ParamSSLMode = "sslmode"
	// ParamAdminDatabase is the database the administrative connection opens, "postgres" by
	// default.
	ParamAdminDatabase = "adminDatabase"
	// ParamTenantClientCertificate, "true", gives the sidecar the DataStore's client certificate
	// too, for servers that require one from every connection.
	ParamTenantClientCertificate = "tenantClientCertificate"
)

var knownParams = map[string]bool{ParamKineImage: true, ParamSSLMode: true, ParamAdminDatabase: true, ParamTenantClientCertificate: true}

var sslModes = map[string]bool{"disable": true, "allow": true, "prefer": true, "require": true, "verify-ca": true, "verify-full": true}

// settings is a validated DataStore.
type settings struct {
	host, port string
	tls        *tls.Config // nil: per sslmode
	sslmode    string
	user       string
	password   string
	seed       []byte // HMAC key tenant passwords are derived from
	kineImage  string
	adminDB    string
	clientCert bool
	cfg        datastore.Config
}

func (s *settings) addr() string { return net.JoinHostPort(s.host, s.port) }

func parseConfig(cfg datastore.Config, defaultImage string) (*settings, error) {
	s := &settings{cfg: cfg, kineImage: defaultImage, adminDB: "postgres"}
	switch len(cfg.Endpoints) {
	case 0:
		return nil, sdk.InvalidField("endpoints", "one PostgreSQL endpoint (host:port) is required")
	case 1:
	default:
		return nil, sdk.InvalidField("endpoints", "the PostgreSQL driver takes exactly one endpoint, got %d", len(cfg.Endpoints))
	}
	host, port, err := splitEndpoint(cfg.Endpoints[0])
	if err != nil {
		return nil, sdk.InvalidField("endpoints[0]", "%v", err)
	}
	s.host, s.port = host, port

	if s.tls, err = cfg.ClientTLS(host); err != nil {
		return nil, err
	}

	if cfg.Username == "" {
		return nil, sdk.InvalidField("username", "required: an administrative PostgreSQL role that creates databases and roles")
	}
	s.user, s.password = cfg.Username, cfg.Password
	switch {
	case cfg.Password != "":
		s.seed = []byte("password\x00" + cfg.Password)
	case len(cfg.ClientKey) > 0:
		s.seed = append([]byte("clientKey\x00"), cfg.ClientKey...)
	default:
		return nil, sdk.InvalidField("password", "required: tenant passwords are derived from the DataStore's password (or client key), so the administrative role needs one")
	}

	for k, v := range cfg.Parameters {
		if !knownParams[k] {
			return nil, sdk.InvalidField("parameters."+k, "unknown parameter (known: kineImage, sslmode, adminDatabase, tenantClientCertificate)")
		}
		switch k {
		case ParamKineImage:
			if v == "" || strings.ContainsAny(v, " \t\n") {
				return nil, sdk.InvalidField("parameters."+k, "invalid image %q", v)
			}
			s.kineImage = v
		case ParamSSLMode:
			if !sslModes[v] {
				return nil, sdk.InvalidField("parameters."+k, "want disable, allow, prefer, require, verify-ca or verify-full, got %q", v)
			}
			if len(cfg.CACert) > 0 && v != "verify-full" {
				return nil, sdk.InvalidField("parameters."+k, "with caCert the driver verifies the server (verify-full), got %q", v)
			}
			s.sslmode = v
		case ParamAdminDatabase:
			if v == "" || strings.ContainsRune(v, 0) || len(v) > maxIdentBytes {
				return nil, sdk.InvalidField("parameters."+k, "invalid database name %q", v)
			}
			s.adminDB = v
		case ParamTenantClientCertificate:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, sdk.InvalidField("parameters."+k, "want true or false, got %q", v)
			}
			if b && len(cfg.ClientCert) == 0 {
				return nil, sdk.InvalidField("parameters."+k, "the DataStore has no client certificate to give the sidecars")
			}
			s.clientCert = b
		}
	}
	if s.kineImage == "" {
		return nil, sdk.InvalidField("parameters."+ParamKineImage, "no kine image: set it here or start the plugin with --kine-image")
	}
	return s, nil
}

func splitEndpoint(ep string) (host, port string, err error) {
	hostport := ep
	if i := strings.Index(ep, "://"); i >= 0 {
		if scheme := ep[:i]; scheme != "postgres" && scheme != "postgresql" && scheme != "tcp" {
			return "", "", fmt.Errorf("scheme %q: want host:port or postgres://host:port", scheme)
		}
		hostport = strings.TrimSuffix(ep[i+3:], "/")
	}
	if strings.ContainsAny(hostport, "/?@,") {
		return "", "", fmt.Errorf("want host:port, got %q", ep)
	}
	host, port, err = net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), defaultPort
	}
	if host == "" {
		return "", "", fmt.Errorf("empty host in %q", ep)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("invalid port %q", port)
	}
	return host, port, nil
}

// connConfig is a pgx configuration for user on database db of the DataStore's server.
func (s *settings) connConfig(user, password, db string) (*pgx.ConnConfig, error) {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: s.addr(), Path: "/" + db}
	q := url.Values{"connect_timeout": {"5"}}
	switch {
	case s.tls != nil:
		q.Set("sslmode", "disable") // replaced below by the configured TLS
	case s.sslmode != "":
		q.Set("sslmode", s.sslmode)
	}
	u.RawQuery = q.Encode()
	c, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, err
	}
	if s.tls != nil {
		c.TLSConfig, c.Fallbacks = s.tls.Clone(), nil
	}
	c.ConnectTimeout = validateTimeout
	return c, nil
}

// names is a tenant's database and role, validated.
type names struct {
	db   string
	role string
}

// tenantNames validates t for a DataStore whose administrative role is admin, connecting to
// adminDB: the names PostgreSQL can hold, and none that is the server's, the administrative
// role's or the owner registry's.
func tenantNames(t datastore.Tenant, admin, adminDB string) (names, error) {
	if err := checkIdent("tenant.schema", t.Schema); err != nil {
		return names{}, err
	}
	if err := checkIdent("tenant.username", t.Username); err != nil {
		return names{}, err
	}
	if strings.ToLower(t.Schema) != t.Schema {
		// kine lowercases the database name of its PostgreSQL endpoint.
		return names{}, sdk.InvalidField("tenant.schema", "must be lower case: kine folds PostgreSQL database names to lower case, got %q", t.Schema)
	}
	switch {
	case t.Schema == "postgres", t.Schema == "template0", t.Schema == "template1":
		return names{}, sdk.InvalidField("tenant.schema", "%q is a system database", t.Schema)
	case t.Schema == adminDB:
		return names{}, sdk.InvalidField("tenant.schema", "%q is the DataStore's administrative database (parameters.adminDatabase)", t.Schema)
	case strings.HasPrefix(t.Schema, registryPrefix):
		return names{}, sdk.InvalidField("tenant.schema", "the %s prefix is reserved for the plugin's owner registry, got %q", registryPrefix, t.Schema)
	}
	switch strings.ToLower(t.Username) {
	case "public", "none", "current_user", "current_role", "session_user", "postgres":
		return names{}, sdk.InvalidField("tenant.username", "%q is reserved", t.Username)
	}
	if strings.HasPrefix(strings.ToLower(t.Username), "pg_") {
		return names{}, sdk.InvalidField("tenant.username", "the pg_ prefix is reserved for system roles, got %q", t.Username)
	}
	if admin != "" && strings.EqualFold(t.Username, admin) {
		return names{}, sdk.InvalidField("tenant.username", "%q is the DataStore's administrative role", t.Username)
	}
	return names{db: t.Schema, role: t.Username}, nil
}

func checkIdent(field, s string) error {
	switch {
	case s == "":
		return sdk.InvalidField(field, "required")
	case !utf8.ValidString(s):
		return sdk.InvalidField(field, "not valid UTF-8")
	case strings.ContainsRune(s, 0):
		return sdk.InvalidField(field, "must not contain NUL")
	case len(s) > maxIdentBytes:
		return sdk.InvalidField(field, "at most %d bytes (PostgreSQL truncates longer names), got %d", maxIdentBytes, len(s))
	}
	return nil
}

// tenantPassword derives the tenant's password from the DataStore's secret: the same tenant on
// the same DataStore always gets the same password, so EnsureTenant is idempotent without the
// plugin storing anything, and a DataStore password rotation rotates every tenant password at
// the next reconcile. Hex keeps it safe inside a URL.
func tenantPassword(seed []byte, role string) string {
	m := hmac.New(sha256.New, seed)
	m.Write([]byte("kamaji-datastore-postgres/tenant-password/v1\x00"))
	m.Write([]byte(role))
	return hex.EncodeToString(m.Sum(nil)[:24])
}

// scramVerifier computes the SCRAM-SHA-256 verifier PostgreSQL stores for password, so the
// password itself never appears in a statement (which a server may log).
func scramVerifier(password string) (string, error) {
	const iterations = 4096
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	server := mac(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(stored[:]), b64(server)), nil
}

// quoteIdent quotes a PostgreSQL identifier.
func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

// quoteLiteral quotes a string literal (standard_conforming_strings, the default since 9.1;
// the E” form would be needed otherwise, and the driver only quotes base64 and hex).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

const validateTimeout = 5 * time.Second
