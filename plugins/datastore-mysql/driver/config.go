package driver

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

const (
	defaultPort = "3306"
	// KineFilesDir is where the core mounts the sidecar's files.
	KineFilesDir = "/etc/kine"
	// KineListen is where the sidecar listens, on the pod's loopback only.
	KineListen = "127.0.0.1:2379"
	// PasswordEnv is the sidecar's environment variable holding the tenant password; the
	// endpoint argument references it as $(KINE_DB_PASSWORD), which the kubelet expands.
	PasswordEnv = "KINE_DB_PASSWORD"

	// MySQL limits: 64 characters for a database name, 80 for a MariaDB user (32 for MySQL,
	// which the server reports itself).
	maxDatabaseChars = 64
	maxUserChars     = 80
)

// Parameters understood in DataStore parameters.
const (
	ParamKineImage = "kineImage"
	// ParamTenantHost is the host part of the tenant accounts, '%' by default (the kine
	// sidecars connect from pod addresses).
	ParamTenantHost = "tenantHost"
	// ParamTenantClientCertificate, "true", gives the sidecar the DataStore's client certificate
	// too, for servers that require one from every connection.
	ParamTenantClientCertificate = "tenantClientCertificate"
)

var knownParams = map[string]bool{ParamKineImage: true, ParamTenantHost: true, ParamTenantClientCertificate: true}

// settings is a validated DataStore.
type settings struct {
	addr       string // host:port
	host       string
	tls        *tls.Config // nil: plain TCP
	user       string
	password   string
	seed       []byte // HMAC key tenant passwords are derived from
	kineImage  string
	tenantHost string
	clientCert bool
	cfg        datastore.Config
}

func parseConfig(cfg datastore.Config, defaultImage string) (*settings, error) {
	s := &settings{cfg: cfg, kineImage: defaultImage, tenantHost: "%"}
	switch len(cfg.Endpoints) {
	case 0:
		return nil, sdk.InvalidField("endpoints", "one MySQL endpoint (host:port) is required")
	case 1:
	default:
		return nil, sdk.InvalidField("endpoints", "the MySQL driver takes exactly one endpoint, got %d", len(cfg.Endpoints))
	}
	host, port, err := splitEndpoint(cfg.Endpoints[0])
	if err != nil {
		return nil, sdk.InvalidField("endpoints[0]", "%v", err)
	}
	s.host, s.addr = host, net.JoinHostPort(host, port)

	if s.tls, err = cfg.ClientTLS(host); err != nil {
		return nil, err
	}

	if cfg.Username == "" {
		return nil, sdk.InvalidField("username", "required: an administrative MySQL user that creates databases and users")
	}
	s.user, s.password = cfg.Username, cfg.Password
	// Tenant passwords are derived from the DataStore's secret, so they are stable across calls
	// without the plugin storing anything: see tenantPassword.
	switch {
	case cfg.Password != "":
		s.seed = []byte("password\x00" + cfg.Password)
	case len(cfg.ClientKey) > 0:
		s.seed = append([]byte("clientKey\x00"), cfg.ClientKey...)
	default:
		return nil, sdk.InvalidField("password", "required: tenant passwords are derived from the DataStore's password (or client key), so the administrative user needs one")
	}

	for k, v := range cfg.Parameters {
		if !knownParams[k] {
			return nil, sdk.InvalidField("parameters."+k, "unknown parameter (known: kineImage, tenantHost, tenantClientCertificate)")
		}
		switch k {
		case ParamKineImage:
			if v == "" || strings.ContainsAny(v, " \t\n") {
				return nil, sdk.InvalidField("parameters."+k, "invalid image %q", v)
			}
			s.kineImage = v
		case ParamTenantHost:
			if v == "" || strings.ContainsRune(v, 0) || utf8.RuneCountInString(v) > 255 {
				return nil, sdk.InvalidField("parameters."+k, "invalid account host %q", v)
			}
			s.tenantHost = v
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
		if scheme := ep[:i]; scheme != "mysql" && scheme != "tcp" {
			return "", "", fmt.Errorf("scheme %q: want host:port or mysql://host:port", scheme)
		}
		hostport = strings.TrimSuffix(ep[i+3:], "/")
	}
	if strings.ContainsAny(hostport, "/?@()") {
		return "", "", fmt.Errorf("want host:port, got %q", ep)
	}
	host, port, err = net.SplitHostPort(hostport)
	if err != nil {
		// A bare host (or IPv6 address) takes the default port.
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

// names is a tenant's database and account, validated.
type names struct {
	db   string
	user string
}

// tenantNames validates t for MySQL, on a DataStore whose administrative user is admin: every
// identifier is quoted when used, so any character MySQL stores is accepted, except what MySQL
// itself refuses, what would be ambiguous, and the names of the server, of the administrative
// user and of the owner registry.
func tenantNames(t datastore.Tenant, admin string) (names, error) {
	if err := checkIdent("tenant.schema", t.Schema, maxDatabaseChars); err != nil {
		return names{}, err
	}
	if err := checkIdent("tenant.username", t.Username, maxUserChars); err != nil {
		return names{}, err
	}
	if strings.ContainsRune(t.Username, ':') {
		// kine's DSN is user:password@tcp(...): the first ':' ends the user name.
		return names{}, sdk.InvalidField("tenant.username", "must not contain ':' (kine's DSN splits user and password on it), got %q", t.Username)
	}
	switch strings.ToLower(t.Username) {
	case "root", "mysql", "mariadb.sys", "mysql.sys", "mysql.session", "mysql.infoschema", "public":
		return names{}, sdk.InvalidField("tenant.username", "%q is a system account", t.Username)
	}
	if admin != "" && strings.EqualFold(t.Username, admin) {
		return names{}, sdk.InvalidField("tenant.username", "%q is the DataStore's administrative user", t.Username)
	}
	switch strings.ToLower(t.Schema) {
	case "mysql", "information_schema", "performance_schema", "sys":
		return names{}, sdk.InvalidField("tenant.schema", "%q is a system database", t.Schema)
	case registryDB:
		return names{}, sdk.InvalidField("tenant.schema", "%q is the plugin's owner registry", t.Schema)
	}
	return names{db: t.Schema, user: t.Username}, nil
}

func checkIdent(field, s string, maxChars int) error {
	switch {
	case s == "":
		return sdk.InvalidField(field, "required")
	case !utf8.ValidString(s):
		return sdk.InvalidField(field, "not valid UTF-8")
	case strings.ContainsRune(s, 0):
		return sdk.InvalidField(field, "must not contain NUL")
	case utf8.RuneCountInString(s) > maxChars:
		return sdk.InvalidField(field, "at most %d characters, got %d", maxChars, utf8.RuneCountInString(s))
	case strings.HasSuffix(s, " "):
		// MySQL ignores trailing spaces when it compares names: "a " would be "a".
		return sdk.InvalidField(field, "must not end with a space, got %q", s)
	}
	for _, r := range s {
		if r > 0xFFFF {
			return sdk.InvalidField(field, "MySQL identifiers cannot hold %q (outside the Basic Multilingual Plane)", r)
		}
	}
	return nil
}

// tenantPassword derives the tenant's password from the DataStore's secret: the same tenant on
// the same DataStore always gets the same password, so EnsureTenant is idempotent without the
// plugin storing anything, and a DataStore password rotation rotates every tenant password at
// the next reconcile. Hex keeps it safe inside a DSN, a URL and a SQL literal.
func tenantPassword(seed []byte, user string) string {
	m := hmac.New(sha256.New, seed)
	m.Write([]byte("kamaji-datastore-mysql/tenant-password/v1\x00"))
	m.Write([]byte(user))
	return hex.EncodeToString(m.Sum(nil)[:24])
}

// quoteIdent quotes a MySQL identifier (database, table, or either part of an account).
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// account is user@host, both quoted.
func account(user, host string) string { return quoteIdent(user) + "@" + quoteIdent(host) }

// grantPattern escapes the wildcards a database-level GRANT interprets: GRANT ON `a_b`.*
// would also cover a database "aXb" of another tenant.
func grantPattern(db string) string {
	r := strings.NewReplacer(`\`, `\\`, `_`, `\_`, `%`, `\%`)
	return r.Replace(db)
}

// quoteHexLiteral quotes a password, which tenantPassword makes hex: nothing to escape, and a
// check that it stays so.
func quoteHexLiteral(s string) string {
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			panic("quoteHexLiteral: not hex")
		}
	}
	return "'" + s + "'"
}
