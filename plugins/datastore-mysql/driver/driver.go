// Package driver is the MySQL/MariaDB datastore driver: many tenants share one server, each
// with its own database and its own account, granted that database only. Tenant apiservers
// reach their data through a kine sidecar; the plugin only provisions, deprovisions, measures
// and moves data.
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

	"github.com/go-sql-driver/mysql"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/datastore/sqlpool"
)

// Version is the plugin release, set at build time with
// -ldflags "-X github.com/openhcp/kamaji/plugins/datastore-mysql/driver.Version=1.2.3".
var Version = "0.1.0"

const (
	// Name is the plugin's name in GetPluginInfo.
	Name = "kamaji-datastore-mysql"
	// DefaultKineImage is the sidecar image when neither the plugin flag nor the DataStore
	// says otherwise.
	DefaultKineImage = "rancher/kine:v0.17.5-amd64"
)

// validateTimeout bounds the connectivity check, so a wrong endpoint is reported within seconds
// rather than at the host's deadline.
const validateTimeout = 5 * time.Second

// Options configure a Driver.
type Options struct {
	// KineImage is the sidecar image unless the DataStore sets parameters.kineImage.
	// Default DefaultKineImage.
	KineImage string
}

// Driver implements datastore.Plugin for MySQL and MariaDB. It is safe for concurrent use; its
// only state is a cache of administrative connection pools, and which servers it has already
// made sure have the owner registry.
type Driver struct {
	opts  Options
	pool  *sqlpool.Pool
	ready sync.Map // sqlpool.Key of an administrative pool -> true
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
	return datastore.PluginInfo{Name: Name, VendorVersion: Version, Drivers: []string{"MySQL"}}, nil
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

// admin returns the administrative pool for s.
func (d *Driver) admin(s *settings) (*sql.DB, func(), error) {
	return d.pool.Get(s.poolKey(), func() (*sql.DB, error) {
		c, err := mysql.NewConnector(s.mysqlConfig(s.user, s.password, ""))
		if err != nil {
			return nil, err
		}
		db := sql.OpenDB(c)
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(2)
		db.SetConnMaxIdleTime(time.Minute)
		return db, nil
	})
}

func (s *settings) mysqlConfig(user, password, db string) *mysql.Config {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = user, password, "tcp", s.addr, db
	if s.tls != nil {
		c.TLS = s.tls.Clone()
	}
	c.Timeout = validateTimeout
	c.AllowNativePasswords = true
	return c
}

// ValidateTenant checks t's names offline, as EnsureTenant and DeleteTenant do. Of cfg only the
// administrative user is read, so that a DataStore with another problem does not make every
// tenant look invalid.
func (d *Driver) ValidateTenant(_ context.Context, cfg datastore.Config, t datastore.Tenant) error {
	_, err := tenantNames(t, cfg.Username)
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
	grants, err := queryStrings(ctx, db, "SHOW GRANTS")
	if err != nil {
		return status.Errorf(codes.Unavailable, "endpoints: SHOW GRANTS on %s: %v", s.addr, err)
	}
	if !canCreateUsers(grants) {
		return status.Errorf(codes.PermissionDenied, "username: %q cannot create users on %s: it needs CREATE USER, CREATE, DROP and SELECT on *.*, with GRANT OPTION (see the driver's documentation)", s.user, s.addr)
	}
	return nil
}

func canCreateUsers(grants []string) bool {
	for _, g := range grants {
		g = strings.ToUpper(g)
		if !strings.Contains(g, " ON *.* TO ") {
			continue
		}
		if strings.HasPrefix(g, "GRANT ALL PRIVILEGES ON *.*") || strings.Contains(g, "CREATE USER") {
			return true
		}
	}
	return false
}

// connectError maps a failed connection to a status naming the field to fix.
func connectError(s *settings, err error) error {
	var me *mysql.MySQLError
	var ne net.Error
	switch {
	case errors.As(err, &me) && (me.Number == 1045 || me.Number == 1698):
		return status.Errorf(codes.PermissionDenied, "password: MySQL at %s refused user %q: %s", s.addr, s.user, me.Message)
	case errors.As(err, &me):
		return status.Errorf(codes.FailedPrecondition, "MySQL at %s: %v", s.addr, err)
	case errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.Unavailable, "endpoints: MySQL at %s does not answer: %v", s.addr, err)
	case strings.Contains(err.Error(), "x509") || strings.Contains(err.Error(), "tls"):
		return status.Errorf(codes.FailedPrecondition, "caCert: TLS with MySQL at %s failed: %v", s.addr, err)
	default:
		return status.Errorf(codes.Unavailable, "endpoints: MySQL at %s: %v", s.addr, err)
	}
}

func queryStrings(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func mysqlErrno(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}
