// Package driver is the NATS datastore driver: each tenant gets a JetStream key-value bucket on
// a shared NATS server (cluster), which its kine sidecar uses as its store. With an account
// signing key (NATS decentralized JWT authentication) the plugin mints for each tenant a user
// that can reach its own bucket and nothing else, and serves many tenants per DataStore; with
// plain credentials there is nothing to isolate tenants with, and a DataStore serves one.
package driver

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk/datastore"
)

// Version is the plugin release, set at build time with
// -ldflags "-X github.com/openhcp/kamaji/plugins/datastore-nats/driver.Version=1.2.3".
var Version = "0.1.0"

const (
	// Name is the plugin's name in GetPluginInfo.
	Name = "kamaji-datastore-nats"
	// DefaultKineImage is the sidecar image when neither the plugin flag nor the DataStore
	// says otherwise.
	DefaultKineImage = "rancher/kine:v0.17.5-amd64"
	// DefaultDriver is the DataStore spec.driver served.
	DefaultDriver = "NATS"
)

// validateTimeout bounds the connectivity check, so a wrong endpoint is reported within seconds.
const validateTimeout = 5 * time.Second

// Options configure a Driver.
type Options struct {
	// KineImage is the sidecar image unless the DataStore sets parameters.kineImage.
	KineImage string
	// AuthMode is AuthJWT (default, multi-tenant) or AuthBasic (one tenant per DataStore).
	AuthMode AuthMode
	// Driver is the DataStore spec.driver served, DefaultDriver by default: a second plugin
	// entry in basic mode can serve another name.
	Driver string
}

// Driver implements datastore.Plugin for NATS JetStream. It is safe for concurrent use; its only
// state is a cache of administrative connections.
type Driver struct {
	opts Options
	mu   sync.Mutex
	pool map[[sha256.Size]byte]*adminConn
}

var _ datastore.Plugin = (*Driver)(nil)

// New returns a driver with an empty connection cache.
func New(opts Options) *Driver {
	if opts.KineImage == "" {
		opts.KineImage = DefaultKineImage
	}
	if opts.AuthMode == "" {
		opts.AuthMode = AuthJWT
	}
	if opts.Driver == "" {
		opts.Driver = DefaultDriver
	}
	return &Driver{opts: opts, pool: map[[sha256.Size]byte]*adminConn{}}
}

// Close closes the cached connections.
func (d *Driver) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, c := range d.pool {
		c.nc.Close()
		delete(d.pool, k)
	}
}

func (d *Driver) GetPluginInfo(context.Context) (datastore.PluginInfo, error) {
	return datastore.PluginInfo{Name: Name, VendorVersion: Version, Drivers: []string{d.opts.Driver}}, nil
}

// Capabilities announce MULTI_TENANT only in jwt mode: with plain credentials every tenant of a
// DataStore would share one identity, so each DataStore serves a single tenant.
func (d *Driver) Capabilities(context.Context) ([]datastore.Capability, error) {
	caps := []datastore.Capability{datastore.CapabilityKineSidecar, datastore.CapabilityUsage, datastore.CapabilityExportImport, datastore.CapabilityValidateTenant}
	if d.opts.AuthMode == AuthJWT {
		caps = append([]datastore.Capability{datastore.CapabilityMultiTenant}, caps...)
	}
	return caps, nil
}

func (d *Driver) Probe(context.Context) (datastore.ProbeResult, error) {
	d.mu.Lock()
	n := len(d.pool)
	d.mu.Unlock()
	return datastore.ProbeResult{Ready: true, Message: fmt.Sprintf("%s mode, %d cached connections", d.opts.AuthMode, n)}, nil
}

func (d *Driver) settings(cfg datastore.Config) (*settings, error) {
	return parseConfig(cfg, d.opts.AuthMode, d.opts.KineImage)
}

// adminConn is the plugin's own connection to a DataStore. In jwt mode it is a user the plugin
// mints for itself with the account's signing key, valid for adminTTL.
type adminConn struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	expires time.Time
}

const (
	adminTTL    = time.Hour
	maxAdminAge = 50 * time.Minute
	maxConns    = 16
)

func (d *Driver) admin(s *settings) (jetstream.JetStream, error) {
	h := sha256.New()
	for _, b := range [][]byte{[]byte(fmt.Sprint(s.servers)), s.cfg.CACert, s.cfg.ClientCert, s.cfg.ClientKey, []byte(s.cfg.Username), []byte(s.cfg.Password), []byte(s.mode)} {
		_ = binary.Write(h, binary.BigEndian, uint64(len(b)))
		h.Write(b)
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	d.mu.Lock()
	if c, ok := d.pool[key]; ok {
		if !c.nc.IsClosed() && (c.expires.IsZero() || time.Until(c.expires) > adminTTL-maxAdminAge) {
			d.mu.Unlock()
			return c.js, nil
		}
		delete(d.pool, key)
		// Drain, not Close: calls in flight on the old connection finish.
		_ = c.nc.Drain()
	}
	d.mu.Unlock()

	opts := []nats.Option{nats.Name(Name), nats.Timeout(validateTimeout), nats.MaxReconnects(-1)}
	if s.tls != nil {
		opts = append(opts, nats.Secure(s.tls.Clone()))
	}
	var expires time.Time
	switch {
	case s.mode == AuthJWT:
		ukp, err := nkeys.CreateUser()
		if err != nil {
			return nil, err
		}
		upub, _ := ukp.PublicKey()
		useed, _ := ukp.Seed()
		uc := jwt.NewUserClaims(upub)
		uc.Name = Name
		expires = time.Now().Add(adminTTL)
		uc.Expires = expires.Unix()
		if pub, _ := s.signer.PublicKey(); pub != s.account {
			uc.IssuerAccount = s.account
		}
		tok, err := uc.Encode(s.signer)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserJWTAndSeed(tok, string(useed)))
	case s.user != "":
		opts = append(opts, nats.UserInfo(s.user, s.password))
	case s.password != "":
		opts = append(opts, nats.Token(s.password))
	}
	nc, err := nats.Connect(joinServers(s.servers), opts...)
	if err != nil {
		return nil, connectError(s, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.pool) >= maxConns {
		for k, c := range d.pool {
			c.nc.Close()
			delete(d.pool, k)
			break
		}
	}
	d.pool[key] = &adminConn{nc: nc, js: js, expires: expires}
	return js, nil
}

func joinServers(s []string) string {
	out := ""
	for i, u := range s {
		if i > 0 {
			out += ","
		}
		out += u
	}
	return out
}

func connectError(s *settings, err error) error {
	switch {
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
		if s.mode == AuthJWT {
			return status.Errorf(codes.PermissionDenied, "password: NATS at %v refused a user signed with the DataStore's key for account %s: %v (is the key one of the account's signing keys, and the account known to the server's resolver?)", s.servers, s.account, err)
		}
		return status.Errorf(codes.PermissionDenied, "password: NATS at %v refused the DataStore's credentials: %v", s.servers, err)
	case errors.Is(err, nats.ErrNoServers), errors.Is(err, nats.ErrTimeout):
		return status.Errorf(codes.Unavailable, "endpoints: NATS at %v does not answer: %v", s.servers, err)
	default:
		return status.Errorf(codes.Unavailable, "endpoints: NATS at %v: %v", s.servers, err)
	}
}

func (d *Driver) ValidateConfig(ctx context.Context, cfg datastore.Config) error {
	s, err := d.settings(cfg)
	if err != nil {
		return err
	}
	js, err := d.admin(s)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, validateTimeout)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return status.Errorf(codes.FailedPrecondition, "NATS at %v: JetStream is not enabled for the DataStore's account", s.servers)
		}
		return status.Errorf(codes.Unavailable, "endpoints: NATS at %v: JetStream account information: %v", s.servers, err)
	}
	return nil
}
