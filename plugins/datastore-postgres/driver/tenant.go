package driver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/stdlib"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk/datastore"
)

// roleAttributes leave the tenant's role nothing but logging in: no superuser, no role or
// database creation, no replication, no row-level security bypass. (It inherits: the owner of
// a database creates in its public schema through the implicit pg_database_owner role, and
// EnsureTenant refuses a role that is a member of any other.)
const roleAttributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT NOREPLICATION NOBYPASSRLS"

// EnsureTenant creates, each step tolerating what already exists: the tenant's role (with its
// derived password), its database owned by that role, and the revocation of PUBLIC's CONNECT
// on it, so no other tenant can even connect. A role or database that belongs to something else
// is refused (ALREADY_EXISTS), never widened. The password is set when the role is created and
// only rewritten when it no longer matches (the DataStore's secret was rotated).
func (d *Driver) EnsureTenant(ctx context.Context, cfg datastore.Config, t datastore.Tenant) (datastore.Connection, error) {
	s, err := parseConfig(cfg, d.opts.KineImage)
	if err != nil {
		return datastore.Connection{}, err
	}
	n, err := tenantNames(t)
	if err != nil {
		return datastore.Connection{}, err
	}
	db, release, err := d.admin(s)
	if err != nil {
		return datastore.Connection{}, err
	}
	defer release()

	r, err := roleState(ctx, db, n)
	if err != nil {
		return datastore.Connection{}, err
	}
	if r.foreign != "" {
		return datastore.Connection{}, status.Errorf(codes.AlreadyExists,
			"tenant.username: the PostgreSQL role %s already %s; choose another username", quoteIdent(n.role), r.foreign)
	}
	if r.dbOwner != "" && r.dbOwner != n.role {
		return datastore.Connection{}, status.Errorf(codes.AlreadyExists,
			"tenant.schema: the PostgreSQL database %s belongs to role %s; choose another schema", quoteIdent(n.db), quoteIdent(r.dbOwner))
	}

	password := tenantPassword(s.seed, n.role)
	if !r.exists {
		verifier, err := scramVerifier(password)
		if err != nil {
			return datastore.Connection{}, err
		}
		_, err = db.ExecContext(ctx, "CREATE ROLE "+quoteIdent(n.role)+" "+roleAttributes+" PASSWORD "+quoteLiteral(verifier))
		if err != nil && pgCode(err) != "42710" { // duplicate_object: a concurrent call won
			return datastore.Connection{}, fmt.Errorf("create role %s: %w", quoteIdent(n.role), err)
		}
	}
	// The administrative role must be a member of the tenant's to create a database it owns,
	// and later to drop it; a superuser needs nothing.
	var member bool
	if err := db.QueryRowContext(ctx, "SELECT pg_has_role(current_user, $1, 'MEMBER')", n.role).Scan(&member); err != nil {
		return datastore.Connection{}, err
	}
	if !member {
		if _, err := db.ExecContext(ctx, "GRANT "+quoteIdent(n.role)+" TO CURRENT_USER"); err != nil {
			return datastore.Connection{}, fmt.Errorf("grant role %s to %q: %w", quoteIdent(n.role), s.user, err)
		}
	}
	if r.dbOwner == "" {
		_, err := db.ExecContext(ctx, "CREATE DATABASE "+quoteIdent(n.db)+" OWNER "+quoteIdent(n.role)+" ENCODING 'UTF8' TEMPLATE template0")
		if err != nil && pgCode(err) != "42P04" { // duplicate_database
			return datastore.Connection{}, fmt.Errorf("create database %s: %w", quoteIdent(n.db), err)
		}
	}
	var public bool
	err = db.QueryRowContext(ctx, "SELECT datacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(datacl) a WHERE a.grantee = 0) FROM pg_database WHERE datname = $1", n.db).Scan(&public)
	if err != nil {
		return datastore.Connection{}, fmt.Errorf("privileges of database %s: %w", quoteIdent(n.db), err)
	}
	if public {
		if _, err := db.ExecContext(ctx, "REVOKE ALL ON DATABASE "+quoteIdent(n.db)+" FROM PUBLIC"); err != nil {
			return datastore.Connection{}, fmt.Errorf("revoke PUBLIC's privileges on %s: %w", quoteIdent(n.db), err)
		}
	}
	if r.exists {
		ok, err := s.passwordWorks(ctx, n, password)
		if err != nil {
			return datastore.Connection{}, err
		}
		if !ok {
			verifier, err := scramVerifier(password)
			if err != nil {
				return datastore.Connection{}, err
			}
			if _, err := db.ExecContext(ctx, "ALTER ROLE "+quoteIdent(n.role)+" "+roleAttributes+" PASSWORD "+quoteLiteral(verifier)); err != nil {
				return datastore.Connection{}, fmt.Errorf("reset the password of role %s: %w", quoteIdent(n.role), err)
			}
		}
	}
	return datastore.Connection{Kine: s.sidecar(n, password)}, nil
}

// sidecar is the kine container of tenant n. Its endpoint names everything but the password,
// which comes from a Secret environment variable the kubelet expands in the argument.
func (s *settings) sidecar(n names, password string) *datastore.KineSidecar {
	user := url.User(n.role).String()
	endpoint := "postgres://" + kubeEscape(user) + ":$(" + PasswordEnv + ")@" + kubeEscape(s.addr()) + "/" + kubeEscape(url.PathEscape(n.db))
	if s.tls == nil && s.sslmode != "" {
		endpoint += "?sslmode=" + s.sslmode
	}
	k := &datastore.KineSidecar{
		Image: s.kineImage,
		Args: []string{
			"--endpoint=" + endpoint,
			"--listen-address=" + KineListen,
			"--metrics-bind-address=0",
		},
		Env:            []datastore.EnvVar{{Name: PasswordEnv, Value: password, Secret: true}},
		ListenEndpoint: "http://" + KineListen,
	}
	if len(s.cfg.CACert) > 0 {
		// kine turns these into sslrootcert (and sslcert, sslkey) with sslmode=verify-full.
		k.Args = append(k.Args, "--ca-file="+KineFilesDir+"/ca.crt")
		k.Files = append(k.Files, datastore.File{Path: KineFilesDir + "/ca.crt", Content: s.cfg.CACert, Mode: 0o444})
	}
	if s.clientCert {
		k.Args = append(k.Args, "--cert-file="+KineFilesDir+"/tls.crt", "--key-file="+KineFilesDir+"/tls.key")
		k.Files = append(k.Files,
			datastore.File{Path: KineFilesDir + "/tls.crt", Content: s.cfg.ClientCert, Mode: 0o444},
			datastore.File{Path: KineFilesDir + "/tls.key", Content: s.cfg.ClientKey, Mode: 0o400, Secret: true})
	}
	return k
}

// kubeEscape protects a literal from the kubelet's $(VAR) expansion of container arguments.
func kubeEscape(s string) string { return strings.ReplaceAll(s, "$", "$$") }

// roleInfo is what the server says about a tenant's role and database.
type roleInfo struct {
	exists  bool
	foreign string // what makes the role someone else's
	dbOwner string // owner of the tenant's database, "" when absent
}

func roleState(ctx context.Context, db *sql.DB, n names) (roleInfo, error) {
	var r roleInfo
	var owner sql.NullString
	err := db.QueryRowContext(ctx, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", n.db).Scan(&owner)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("look up database %s: %w", quoteIdent(n.db), err)
	}
	r.dbOwner = owner.String
	var super, createRole, createDB, replication, bypass bool
	err = db.QueryRowContext(ctx, "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = $1", n.role).
		Scan(&super, &createRole, &createDB, &replication, &bypass)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return r, nil
	case err != nil:
		return r, fmt.Errorf("look up role %s: %w", quoteIdent(n.role), err)
	}
	r.exists = true
	if super || createRole || createDB || replication || bypass {
		r.foreign = "holds administrative attributes"
		return r, nil
	}
	var other sql.NullString
	err = db.QueryRowContext(ctx, `SELECT string_agg(quote_ident(g.rolname), ', ') FROM pg_auth_members m
		JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = $1`, n.role).Scan(&other)
	if err != nil {
		return r, err
	}
	if other.String != "" {
		r.foreign = "is a member of " + other.String
		return r, nil
	}
	err = db.QueryRowContext(ctx, `SELECT string_agg(quote_ident(datname), ', ') FROM pg_database
		WHERE datdba = (SELECT oid FROM pg_roles WHERE rolname = $1) AND datname <> $2`, n.role, n.db).Scan(&other)
	if err != nil {
		return r, err
	}
	if other.String != "" {
		r.foreign = "owns database " + other.String
	}
	return r, nil
}

// passwordWorks logs in as the tenant: a SCRAM verifier is salted and only a superuser could
// read it, so a login is the only check that works. (With trust authentication any password
// works, and the password is left alone.)
func (s *settings) passwordWorks(ctx context.Context, n names, password string) (bool, error) {
	c, err := s.connConfig(n.role, password, n.db)
	if err != nil {
		return false, err
	}
	db := stdlib.OpenDB(*c)
	defer db.Close()
	err = db.PingContext(ctx)
	switch pgCode(err) {
	case "":
		if err != nil {
			return false, fmt.Errorf("log in as role %s: %w", quoteIdent(n.role), err)
		}
		return true, nil
	case "28P01": // invalid_password
		return false, nil
	default:
		return false, fmt.Errorf("log in as role %s: %w", quoteIdent(n.role), err)
	}
}

// DeleteTenant revokes access first (the role can no longer log in), then drops the database,
// ending its sessions, and the role. A role that is not the tenant's (see EnsureTenant) is left
// alone, and so is a database owned by another role.
func (d *Driver) DeleteTenant(ctx context.Context, cfg datastore.Config, t datastore.Tenant) error {
	s, err := parseConfig(cfg, d.opts.KineImage)
	if err != nil {
		return err
	}
	n, err := tenantNames(t)
	if err != nil {
		return err
	}
	db, release, err := d.admin(s)
	if err != nil {
		return err
	}
	defer release()

	r, err := roleState(ctx, db, n)
	if err != nil {
		return err
	}
	owned := r.exists && r.foreign == ""
	if owned {
		if _, err := db.ExecContext(ctx, "ALTER ROLE "+quoteIdent(n.role)+" NOLOGIN"); err != nil {
			return fmt.Errorf("disable role %s: %w", quoteIdent(n.role), err)
		}
	}
	if owned && r.dbOwner == n.role {
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(n.db)+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", quoteIdent(n.db), err)
		}
	}
	if owned {
		if _, err := db.ExecContext(ctx, "DROP ROLE IF EXISTS "+quoteIdent(n.role)); err != nil {
			return fmt.Errorf("drop role %s: %w", quoteIdent(n.role), err)
		}
	}
	return nil
}
