// Package driver is the PostgreSQL datastore driver: many tenants share one server, each with
// its own database, owned by its own role, which no other role may connect to. Tenant
// apiservers reach their data through a kine sidecar; the plugin only provisions, deprovisions,
// measures and moves data.
package driver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/datastore/sqlpool"
)

// Version is the plugin release, set at build time with
// -ldflags "-X github.com/openhcp/kamaji/plugins/datastore-postgres/driver.Version=1.2.3".
var Version = "0.1.0"

const (
	// Name is the plugin's name in GetPluginInfo.
	Name = "kamaji-datastore-postgres"
	// DefaultKineImage is the sidecar image when neither the plugin flag nor the DataStore
	// says otherwise.
	DefaultKineImage = "rancher/kine:v0.17.5-amd64"
)

// Options configure a Driver.
type Options struct {
	// KineImage is the sidecar image unless the DataStore sets parameters.kineImage.
	// Default DefaultKineImage.
	KineImage string
}

// Driver implements datastore.Plugin for PostgreSQL. It is safe for concurrent use; its only
// state is a cache of administrative connection pools, and which owner registries it has
// already made sure of.
type Driver struct {
	opts     Options
	pool     *sqlpool.Pool
	ready    sync.Map // sqlpool.Key of a registry pool -> true
	creating sync.Mutex
}

var _ datastore.Plugin = (*Driver)(nil)

// New returns a driver with an empty connection cache.
func New(opts Options) *Driver {
	if opts.KineImage == "" {
		opts.KineImage = DefaultKineImage
	}
	return &Driver{opts: opts, pool: sqlpool.New(sqlpool.DefaultMax)}
}

// Close closes the cached connections.
func (d *Driver) Close() { d.pool.Close() }

func (d *Driver) GetPluginInfo(context.Context) (datastore.PluginInfo, error) {
	return datastore.PluginInfo{Name: Name, VendorVersion: Version, Drivers: []string{"PostgreSQL"}}, nil
}

func (d *Driver) Capabilities(context.Context) ([]datastore.Capability, error) {
	return []datastore.Capability{
		datastore.CapabilityMultiTenant,
		datastore.CapabilityKineSidecar,
		datastore.CapabilityUsage,
		datastore.CapabilityExportImport,
		datastore.CapabilityValidateTenant,
	}, nil
}

// Probe is always ready: the driver holds no state that could go bad, and the health of a
// server belongs to ValidateConfig, which knows which server.
func (d *Driver) Probe(context.Context) (datastore.ProbeResult, error) {
	return datastore.ProbeResult{Ready: true, Message: fmt.Sprintf("%d cached connection pools", d.pool.Len())}, nil
}

// admin returns the administrative pool for s, on its maintenance database.
func (d *Driver) admin(s *settings) (*sql.DB, func(), error) { return d.adminOn(s, s.adminDB) }

// adminOn returns the administrative pool for s on database dbName.
func (d *Driver) adminOn(s *settings, dbName string) (*sql.DB, func(), error) {
	return d.pool.Get(s.poolKey(dbName), func() (*sql.DB, error) {
		c, err := s.connConfig(s.user, s.password, dbName)
		if err != nil {
			return nil, err
		}
		db := stdlib.OpenDB(*c)
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(2)
		db.SetConnMaxIdleTime(time.Minute)
		return db, nil
	})
}

// tenantDB opens the administrative role on the tenant's database, for its data. Not cached:
// usage, export and import are rare, and a cached pool would hold DROP DATABASE.
func (s *settings) tenantDB(n names) (*sql.DB, error) {
	c, err := s.connConfig(s.user, s.password, n.db)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*c)
	db.SetMaxOpenConns(2)
	return db, nil
}

// ValidateTenant checks t's names offline, as EnsureTenant and DeleteTenant do. Only the
// fields the names depend on are read from cfg (the administrative role and database), so that
// a DataStore with another problem does not make every tenant look invalid.
func (d *Driver) ValidateTenant(_ context.Context, cfg datastore.Config, t datastore.Tenant) error {
	adminDB := cfg.Parameters[ParamAdminDatabase]
	if adminDB == "" {
		adminDB = "postgres"
	}
	_, err := tenantNames(t, cfg.Username, adminDB)
	return err
}

func (d *Driver) ValidateConfig(ctx context.Context, cfg datastore.Config) error {
	s, err := parseConfig(cfg, d.opts.KineImage)
	if err != nil {
		return err
	}
	db, release, err := d.admin(s)
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "connect: %v", err)
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, validateTimeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		return connectError(s, err)
	}
	var super, createRole, createDB, inherit bool
	if err := db.QueryRowContext(ctx, "SELECT rolsuper, rolcreaterole, rolcreatedb, rolinherit FROM pg_roles WHERE rolname = current_user").Scan(&super, &createRole, &createDB, &inherit); err != nil {
		return status.Errorf(codes.Unavailable, "endpoints: PostgreSQL at %s: %v", s.addr(), err)
	}
	if !super && (!createRole || !createDB) {
		return status.Errorf(codes.PermissionDenied, "username: role %q cannot create roles and databases: it needs CREATEROLE and CREATEDB (or SUPERUSER)", s.user)
	}
	if !super && !inherit {
		// It drops a tenant's database with the privileges of the tenant role, its owner.
		return status.Errorf(codes.PermissionDenied, "username: role %q is NOINHERIT: it needs INHERIT to use its membership in the tenant roles (or SUPERUSER)", s.user)
	}
	return nil
}

// connectError maps a failed connection to a status naming the field to fix.
func connectError(s *settings, err error) error {
	var pe *pgconn.PgError
	var ne net.Error
	switch {
	case errors.As(err, &pe) && (pe.Code == "28P01" || pe.Code == "28000"):
		return status.Errorf(codes.PermissionDenied, "password: PostgreSQL at %s refused role %q: %s", s.addr(), s.user, pe.Message)
	case errors.As(err, &pe) && pe.Code == "3D000":
		return status.Errorf(codes.FailedPrecondition, "parameters.adminDatabase: %s", pe.Message)
	case errors.As(err, &pe):
		return status.Errorf(codes.FailedPrecondition, "PostgreSQL at %s: %s (%s)", s.addr(), pe.Message, pe.Code)
	case strings.Contains(err.Error(), "x509") || strings.Contains(err.Error(), "tls"):
		return status.Errorf(codes.FailedPrecondition, "caCert: TLS with PostgreSQL at %s failed: %v", s.addr(), err)
	case errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.Unavailable, "endpoints: PostgreSQL at %s does not answer: %v", s.addr(), err)
	default:
		return status.Errorf(codes.Unavailable, "endpoints: PostgreSQL at %s: %v", s.addr(), err)
	}
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
