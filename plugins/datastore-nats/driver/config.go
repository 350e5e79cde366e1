package driver

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/nats-io/nkeys"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

const (
	defaultPort = "4222"
	// KineFilesDir is where the core mounts the sidecar's files.
	KineFilesDir = "/etc/kine"
	// KineListen is where the sidecar listens, on the pod's loopback only.
	KineListen = "127.0.0.1:2379"

	// kine's bucket defaults; the plugin creates the bucket exactly as kine would, since kine
	// refuses a bucket of the same name with another configuration.
	defaultRevHistory = 10
	defaultReplicas   = 1
	kineDescription   = "Holds kine key/values"
)

// Parameters understood in DataStore parameters.
const (
	ParamKineImage  = "kineImage"
	ParamReplicas   = "replicas"
	ParamRevHistory = "revHistory"
	// ParamTenantClientCertificate, "true", gives the sidecar the DataStore's client certificate
	// too, for servers that require one from every connection.
	ParamTenantClientCertificate = "tenantClientCertificate"
)

var knownParams = map[string]bool{ParamKineImage: true, ParamReplicas: true, ParamRevHistory: true, ParamTenantClientCertificate: true}

// AuthMode is how the plugin authenticates to its DataStores, and hence whether it can isolate
// tenants.
type AuthMode string

const (
	// AuthJWT (the default) is NATS decentralized authentication: the DataStore gives the
	// plugin an account signing key, the plugin mints for each tenant a user restricted to
	// the tenant's bucket. Multi-tenant.
	AuthJWT AuthMode = "jwt"
	// AuthBasic is a plain user and password (or token, or nothing): every tenant would share
	// the same identity, so a DataStore serves a single tenant.
	AuthBasic AuthMode = "basic"
)

// settings is a validated DataStore.
type settings struct {
	servers    []string // nats://host:port
	tls        *tls.Config
	mode       AuthMode
	account    string        // JWT: the account's public key
	signer     nkeys.KeyPair // JWT: the account's (signing) key
	signerSeed []byte
	user       string // basic
	password   string // basic (a token when user is empty)
	kineImage  string
	replicas   int
	revHistory int
	clientCert bool
	cfg        datastore.Config
}

func parseConfig(cfg datastore.Config, mode AuthMode, defaultImage string) (*settings, error) {
	s := &settings{cfg: cfg, mode: mode, kineImage: defaultImage, replicas: defaultReplicas, revHistory: defaultRevHistory}
	if len(cfg.Endpoints) == 0 {
		return nil, sdk.InvalidField("endpoints", "at least one NATS endpoint (host:port) is required")
	}
	for i, ep := range cfg.Endpoints {
		u, err := serverURL(ep)
		if err != nil {
			return nil, sdk.InvalidField(fmt.Sprintf("endpoints[%d]", i), "%v", err)
		}
		s.servers = append(s.servers, u)
	}
	var err error
	if s.tls, err = cfg.ClientTLS(""); err != nil {
		return nil, err
	}

	switch mode {
	case AuthJWT:
		if !strings.HasPrefix(cfg.Password, "SA") {
			return nil, sdk.InvalidField("password", "the plugin runs in jwt mode (multi-tenant): the DataStore's password must be the seed (SA...) of the NATS account's signing key, its username the account's public key (A...); a DataStore with plain credentials needs a plugin started with --auth-mode=basic, which serves one tenant per DataStore")
		}
		kp, err := nkeys.FromSeed([]byte(cfg.Password))
		if err != nil {
			return nil, sdk.InvalidField("password", "not an account seed: %v", err)
		}
		pub, err := kp.PublicKey()
		if err != nil || !nkeys.IsValidPublicAccountKey(pub) {
			return nil, sdk.InvalidField("password", "not an account seed")
		}
		s.signer, s.signerSeed, s.account = kp, []byte(cfg.Password), pub
		if cfg.Username != "" {
			if !nkeys.IsValidPublicAccountKey(cfg.Username) {
				return nil, sdk.InvalidField("username", "must be the account's public key (A...), or empty when the password is the account's own seed")
			}
			s.account = cfg.Username
		}
	case AuthBasic:
		if strings.HasPrefix(cfg.Password, "SA") {
			if _, err := nkeys.FromSeed([]byte(cfg.Password)); err == nil {
				return nil, sdk.InvalidField("password", "an account seed, but the plugin runs in basic mode: start it with --auth-mode=jwt to serve several tenants with it")
			}
		}
		s.user, s.password = cfg.Username, cfg.Password
	default:
		return nil, fmt.Errorf("unknown auth mode %q", mode)
	}

	for k, v := range cfg.Parameters {
		if !knownParams[k] {
			return nil, sdk.InvalidField("parameters."+k, "unknown parameter (known: kineImage, replicas, revHistory, tenantClientCertificate)")
		}
		switch k {
		case ParamKineImage:
			if v == "" || strings.ContainsAny(v, " \t\n") {
				return nil, sdk.InvalidField("parameters."+k, "invalid image %q", v)
			}
			s.kineImage = v
		case ParamReplicas:
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 5 {
				return nil, sdk.InvalidField("parameters."+k, "want 1 to 5 (kine's limits), got %q", v)
			}
			s.replicas = n
		case ParamRevHistory:
			n, err := strconv.Atoi(v)
			if err != nil || n < 2 || n > 64 {
				return nil, sdk.InvalidField("parameters."+k, "want 2 to 64 (kine's limits), got %q", v)
			}
			s.revHistory = n
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

func serverURL(ep string) (string, error) {
	scheme, hostport := "nats", ep
	if i := strings.Index(ep, "://"); i >= 0 {
		scheme, hostport = ep[:i], strings.TrimSuffix(ep[i+3:], "/")
		if scheme != "nats" && scheme != "tls" {
			return "", fmt.Errorf("scheme %q: want host:port, nats://host:port or tls://host:port", scheme)
		}
	}
	if strings.ContainsAny(hostport, "/?@,") {
		return "", fmt.Errorf("want host:port, got %q", ep)
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), defaultPort
	}
	if host == "" {
		return "", fmt.Errorf("empty host in %q", ep)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("invalid port %q", port)
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// bucketPrefix marks the buckets this plugin owns.
const bucketPrefix = "kamaji_"

// bucketName is the tenant's KV bucket: a readable part of the schema and a digest of schema and
// username, so that any schema (bucket names only take letters, digits, '-' and '_') gets a
// bucket of its own, and a deleted tenant's credentials (which decentralized authentication
// cannot revoke) never reach the bucket of a later tenant with another username.
func bucketName(t datastore.Tenant) (string, error) {
	switch {
	case t.Schema == "":
		return "", sdk.InvalidField("tenant.schema", "required")
	case t.Username == "":
		return "", sdk.InvalidField("tenant.username", "required")
	case strings.ContainsRune(t.Schema, 0):
		return "", sdk.InvalidField("tenant.schema", "must not contain NUL")
	}
	var b strings.Builder
	for _, r := range t.Schema {
		if b.Len() >= 48 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	sum := sha256.Sum256([]byte(t.Schema + "\x00" + t.Username))
	return bucketPrefix + b.String() + "_" + hex.EncodeToString(sum[:6]), nil
}
