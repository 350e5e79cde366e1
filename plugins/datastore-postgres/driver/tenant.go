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

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// roleAttributes leave the tenant's role nothing but logging in: no superuser, no role or
// database creation, no replication, no row-level security bypass. (It inherits: the owner of
// a database creates in its public schema through the implicit pg_database_owner role, and
// EnsureTenant refuses a role that is a member of any other.)
const roleAttributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT NOREPLICATION NOBYPASSRLS"

// EnsureTenant claims the tenant's database and role in the owner registry first, so that of
// two owners asking for the same name only one goes on, and refuses (ALREADY_EXISTS) a name
// recorded for another owner, or a role or database that is not a tenant's; nothing is created
// or changed then. It then creates, each step tolerating what already exists: the role (with
// its derived password), the database owned by that role, and the revocation of PUBLIC's
// CONNECT on it, so no other tenant can even connect. The password is set when the role is
// created and only rewritten when it no longer matches (the DataStore's secret was rotated).
func (d *Driver) EnsureTenant(ctx context.Context, cfg datastore.Config, t datastore.Tenant) (datastore.Connection, error) {
	s, err := parseConfig(cfg, d.opts.KineImage)
	if err != nil {
		return datastore.Connection{}, err
	}
	n, err := tenantNames(t, s.user, s.adminDB)
	if err != nil {
		return datastore.Connection{}, err
	}
	db, release, err := d.admin(s)
	if err != nil {
		return datastore.Connection{}, err
	}
	defer release()

	var r roleInfo
	err = d.withClaims(ctx, s, func(tx *sql.Tx) error {
		schema, user, err := claimTenant(ctx, tx, n, t.Owner())
		if err != nil {
			return err
		}
		switch {
		case schema.state == claimOther:
			return sdk.Owned("tenant.schema", "the PostgreSQL database %s is owned by %s", quoteIdent(n.db), schema.owner)
		case user.state == claimOther:
			return sdk.Owned("tenant.username", "the PostgreSQL role %s is owned by %s", quoteIdent(n.role), user.owner)
		}
		if r, err = roleState(ctx, tx, n); err != nil {
			return err
		}
		return r.refusal(n, schema, user)
	})
	if err != nil {
		return datastore.Connection{}, err
	}

	password := tenantPassword(s.seed, n.role)
	switch {
	case !r.exists:
		verifier, err := scramVerifier(password)
		if err != nil {
			return datastore.Connection{}, err
		}
		_, err = db.ExecContext(ctx, "CREATE ROLE "+quoteIdent(n.role)+" "+roleAttributes+" PASSWORD "+quoteLiteral(verifier))
		if code := pgCode(err); err != nil && code != "42710" && code != "23505" { // duplicate_object: a concurrent call won
			return datastore.Connection{}, fmt.Errorf("create role %s: %w", quoteIdent(n.role), err)
		}
	case !r.canLogin:
		// A DeleteTenant that did not finish disabled it; without LOGIN no password works.
		if _, err := db.ExecContext(ctx, "ALTER ROLE "+quoteIdent(n.role)+" LOGIN"); err != nil {
			return datastore.Connection{}, fmt.Errorf("enable role %s: %w", quoteIdent(n.role), err)
		}
	}
	if err := holdPrivilegesOf(ctx, db, s, n.role); err != nil {
		return datastore.Connection{}, err
	}
	if r.dbOwner == "" {
		_, err := db.ExecContext(ctx, "CREATE DATABASE "+quoteIdent(n.db)+" OWNER "+quoteIdent(n.role)+" ENCODING 'UTF8' TEMPLATE template0")
		if code := pgCode(err); err != nil && code != "42P04" && code != "23505" { // duplicate_database
			return datastore.Connection{}, fmt.Errorf("create database %s: %w", quoteIdent(n.db), err)
		}
	}
	if err := revokePublic(ctx, db, n.db); err != nil {
		return datastore.Connection{}, err
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

// holdPrivilegesOf makes sure the administrative role has the privileges of the tenant role,
// which owns the tenant's database: without them a role that is not a superuser can neither
// create that database for it nor drop it ("must be owner of database"). A CREATEROLE role
// grants itself the membership; it must also INHERIT, to use it.
func holdPrivilegesOf(ctx context.Context, db *sql.DB, s *settings, role string) error {
	holds := func() (bool, error) {
		var ok bool
		err := db.QueryRowContext(ctx, "SELECT pg_has_role(current_user, $1, 'USAGE')", role).Scan(&ok)
		return ok, err
	}
	if ok, err := holds(); err != nil || ok {
		return err
	}
	if _, err := db.ExecContext(ctx, "GRANT "+quoteIdent(role)+" TO CURRENT_USER"); err != nil {
		return fmt.Errorf("grant role %s to %q: %w", quoteIdent(role), s.user, err)
	}
	if ok, err := holds(); err != nil || ok {
		return err
	}
	return status.Errorf(codes.FailedPrecondition, "username: role %q is a member of the tenant role %s but NOINHERIT: it needs INHERIT to manage the tenant's database", s.user, quoteIdent(role))
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
	exists   bool
	canLogin bool
	foreign  string // why the role is not a tenant role, "" when it is one
	members  string // roles other than the administrative one that hold the tenant role
	dbOwner  string // owner of the tenant's database, "" when absent
	dbOthers string // roles other than the owner granted privileges on the database
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// roleState reads the shared catalogs, which every database of the server sees. A tenant role
// has no administrative attribute, is a member of no role, and owns and is granted nothing
// outside its database (pg_shdepend records both, for every database).
func roleState(ctx context.Context, q queryer, n names) (roleInfo, error) {
	var r roleInfo
	var owner, others sql.NullString
	err := q.QueryRowContext(ctx, `SELECT pg_get_userbyid(d.datdba), (SELECT string_agg(DISTINCT quote_ident(pg_get_userbyid(a.grantee)), ', ')
		FROM aclexplode(d.datacl) a WHERE a.grantee NOT IN (0, d.datdba)) FROM pg_database d WHERE d.datname = $1`, n.db).Scan(&owner, &others)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("look up database %s: %w", quoteIdent(n.db), err)
	}
	r.dbOwner, r.dbOthers = owner.String, others.String
	var super, createRole, createDB, replication, bypass bool
	var memberOf, members, outside sql.NullString
	err = q.QueryRowContext(ctx, `SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls, r.rolcanlogin,
		(SELECT string_agg(quote_ident(g.rolname), ', ') FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid),
		(SELECT string_agg(quote_ident(u.rolname), ', ') FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member
			WHERE m.roleid = r.oid AND u.rolname <> current_user),
		(SELECT string_agg(DISTINCT COALESCE(quote_ident(x.datname), '(shared objects)'), ', ') FROM pg_shdepend s
			LEFT JOIN pg_database x ON x.oid = CASE WHEN s.classid = 'pg_database'::regclass THEN s.objid ELSE s.dbid END
			WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = r.oid AND x.datname IS DISTINCT FROM $2)
		FROM pg_roles r WHERE r.rolname = $1`, n.role, n.db).
		Scan(&super, &createRole, &createDB, &replication, &bypass, &r.canLogin, &memberOf, &members, &outside)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return r, nil
	case err != nil:
		return r, fmt.Errorf("look up role %s: %w", quoteIdent(n.role), err)
	}
	r.exists, r.members = true, members.String
	switch {
	case super || createRole || createDB || replication || bypass:
		r.foreign = "holds administrative attributes"
	case memberOf.String != "":
		r.foreign = "is a member of " + memberOf.String
	case outside.String != "":
		r.foreign = "owns or is granted objects in " + outside.String
	}
	return r, nil
}

// refusal is why EnsureTenant must not take the role and database as they are. A record
// claimed just now (nobody's before: an older plugin release made them, or nobody did) is
// adopted only if no other role holds the tenant role or is granted the database.
func (r roleInfo) refusal(n names, schema, user part) error {
	switch {
	case r.foreign != "":
		return sdk.Owned("tenant.username", "the PostgreSQL role %s already %s; choose another username", quoteIdent(n.role), r.foreign)
	case user.state == claimFresh && r.members != "":
		return sdk.Owned("tenant.username", "the PostgreSQL role %s has no owner record and is granted to %s; choose another username", quoteIdent(n.role), r.members)
	case r.dbOwner != "" && r.dbOwner != n.role:
		return sdk.Owned("tenant.schema", "the PostgreSQL database %s belongs to role %s; choose another schema", quoteIdent(n.db), quoteIdent(r.dbOwner))
	case schema.state == claimFresh && r.dbOthers != "":
		return sdk.Owned("tenant.schema", "the PostgreSQL database %s has no owner record and is granted to %s; choose another schema", quoteIdent(n.db), r.dbOthers)
	}
	return nil
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

// DeleteTenant removes only what the caller owns: what the registry records for it, or records
// for nobody and EnsureTenant would adopt. It revokes access first (the role can no longer log
// in), then drops the database, ending its sessions, then the role, and last the owner
// records, so that a retry after a failure finds them and finishes. A name recorded for another
// owner is left alone, and the call succeeds.
func (d *Driver) DeleteTenant(ctx context.Context, cfg datastore.Config, t datastore.Tenant) error {
	s, err := parseConfig(cfg, d.opts.KineImage)
	if err != nil {
		return err
	}
	n, err := tenantNames(t, s.user, s.adminDB)
	if err != nil {
		return err
	}
	db, release, err := d.admin(s)
	if err != nil {
		return err
	}
	defer release()

	o := t.Owner()
	var r roleInfo
	var schema, user part
	var roleOurs, dbOurs bool
	err = d.withClaims(ctx, s, func(tx *sql.Tx) error {
		// Claiming what nobody records keeps a concurrent EnsureTenant of another owner from
		// adopting it while it goes away.
		if schema, user, err = claimTenant(ctx, tx, n, o); err != nil {
			return err
		}
		if r, err = roleState(ctx, tx, n); err != nil {
			return err
		}
		// What nobody records is the caller's if EnsureTenant would adopt all of it.
		adopt := r.refusal(n, schema, user) == nil
		roleOurs = r.exists && r.foreign == "" && (user.state == claimMine || user.state == claimFresh && adopt)
		dbOurs = r.dbOwner == n.role && roleOurs && (schema.state == claimMine || schema.state == claimFresh && adopt) ||
			r.dbOwner == s.user && schema.state == claimMine // made by hand, in the caller's name
		// What was claimed just now and is not ours to remove is given back at once.
		for _, p := range []struct {
			part
			ours bool
		}{{schema, dbOurs}, {user, roleOurs}} {
			if p.state == claimFresh && !p.ours {
				if err := unclaim(ctx, tx, p.part, o); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}

	// A role that owns a database not ours to drop stays as it is.
	dropRole := roleOurs && (r.dbOwner != n.role || dbOurs)
	if dropRole {
		if _, err := db.ExecContext(ctx, "ALTER ROLE "+quoteIdent(n.role)+" NOLOGIN"); err != nil {
			return fmt.Errorf("disable role %s: %w", quoteIdent(n.role), err)
		}
	}
	if dbOurs {
		if r.dbOwner == n.role {
			if err := holdPrivilegesOf(ctx, db, s, n.role); err != nil {
				return err
			}
		}
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(n.db)+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", quoteIdent(n.db), err)
		}
	}
	if dropRole {
		if _, err := db.ExecContext(ctx, "DROP ROLE IF EXISTS "+quoteIdent(n.role)); err != nil {
			return fmt.Errorf("drop role %s: %w", quoteIdent(n.role), err)
		}
	}
	return d.withClaims(ctx, s, func(tx *sql.Tx) error {
		for _, p := range []part{schema, user} {
			if p.state != claimOther {
				if err := unclaim(ctx, tx, p, o); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
