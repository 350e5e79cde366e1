package driver

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// tenantPrivileges is what kine needs on its database: its table, indexes and rows. No DROP,
// no GRANT OPTION, nothing outside the database.
var tenantPrivileges = []string{"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "INDEX", "ALTER"}

// EnsureTenant claims the tenant's database and user names in the owner registry first, so
// that of two owners asking for the same name only one goes on, and refuses (ALREADY_EXISTS) a
// name recorded for another owner, an account holding privileges outside the tenant's database
// or a database another account is granted; nothing is created or changed then. It then
// creates, each step tolerating what already exists: the database, the account (with its
// derived password) and the grant on that database only. The password is set when the account
// is created and only rewritten when it no longer matches (the DataStore's secret was rotated).
func (d *Driver) EnsureTenant(ctx context.Context, cfg datastore.Config, t datastore.Tenant) (datastore.Connection, error) {
	s, err := parseConfig(cfg, d.opts.KineImage)
	if err != nil {
		return datastore.Connection{}, err
	}
	n, err := tenantNames(t, s.user)
	if err != nil {
		return datastore.Connection{}, err
	}
	db, release, err := d.admin(s)
	if err != nil {
		return datastore.Connection{}, err
	}
	defer release()

	acct := account(n.user, s.tenantHost)
	var u userInfo
	err = d.withClaims(ctx, s, db, func(tx *sql.Tx) error {
		schema, user, err := claimTenant(ctx, tx, n, t.Owner())
		if err != nil {
			return err
		}
		switch {
		case schema.state == claimOther:
			return sdk.Owned("tenant.schema", "the MySQL database %s is owned by %s", quoteIdent(n.db), schema.owner)
		case user.state == claimOther:
			return sdk.Owned("tenant.username", "the MySQL account %s is owned by %s", acct, user.owner)
		}
		if u, err = s.userState(ctx, tx, n); err != nil {
			return err
		}
		others, err := s.otherGrantees(ctx, tx, n, true)
		if err != nil {
			return err
		}
		return refusal(n, acct, u, others)
	})
	if err != nil {
		return datastore.Connection{}, err
	}

	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(n.db)+" CHARACTER SET utf8mb4"); err != nil {
		return datastore.Connection{}, fmt.Errorf("create database %s: %w", quoteIdent(n.db), err)
	}
	password := tenantPassword(s.seed, n.user)
	if !u.exists {
		if _, err := db.ExecContext(ctx, "CREATE USER IF NOT EXISTS "+acct+" IDENTIFIED BY "+quoteHexLiteral(password)); err != nil {
			return datastore.Connection{}, fmt.Errorf("create user %s: %w", acct, err)
		}
	}
	if !u.granted {
		if _, err := db.ExecContext(ctx, "GRANT "+strings.Join(tenantPrivileges, ", ")+" ON "+quoteIdent(grantPattern(n.db))+".* TO "+acct); err != nil {
			return datastore.Connection{}, fmt.Errorf("grant %s to %s: %w", quoteIdent(n.db), acct, err)
		}
	}
	if u.exists {
		ok, err := s.passwordWorks(ctx, n, password)
		if err != nil {
			return datastore.Connection{}, err
		}
		if !ok {
			if _, err := db.ExecContext(ctx, "ALTER USER "+acct+" IDENTIFIED BY "+quoteHexLiteral(password)); err != nil {
				return datastore.Connection{}, fmt.Errorf("reset the password of %s: %w", acct, err)
			}
		}
	}
	return datastore.Connection{Kine: s.sidecar(n, password)}, nil
}

// sidecar is the kine container of tenant n. Its endpoint names everything but the password,
// which comes from a Secret environment variable the kubelet expands in the argument.
func (s *settings) sidecar(n names, password string) *datastore.KineSidecar {
	// kine hands what follows "mysql://" to the MySQL driver's DSN parser, which splits user and
	// password at the first ':' and path-unescapes the database name.
	endpoint := "mysql://" + kubeEscape(n.user) + ":$(" + PasswordEnv + ")@tcp(" + kubeEscape(s.addr) + ")/" + kubeEscape(url.PathEscape(n.db))
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

// userInfo is what the server says about a tenant's account.
type userInfo struct {
	exists  bool
	granted bool   // holds every tenant privilege on the tenant's database
	foreign string // a privilege outside the tenant's database, when it holds one
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *settings) userState(ctx context.Context, q querier, n names) (userInfo, error) {
	var u userInfo
	var count int
	if err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = ?", n.user, s.tenantHost).Scan(&count); err != nil {
		return u, fmt.Errorf("look up account %s: %w", account(n.user, s.tenantHost), err)
	}
	if count == 0 {
		return u, nil
	}
	u.exists = true
	grants, err := queryStrings(ctx, q, "SHOW GRANTS FOR "+account(n.user, s.tenantHost))
	if err != nil {
		return u, fmt.Errorf("grants of %s: %w", account(n.user, s.tenantHost), err)
	}
	ours := " ON " + quoteIdent(grantPattern(n.db)) + ".* TO "
	for _, g := range grants {
		switch {
		case strings.HasPrefix(g, "GRANT USAGE ON *.* TO "):
		case strings.Contains(g, ours):
			privs := strings.Split(strings.TrimPrefix(g[:strings.Index(g, ours)], "GRANT "), ", ")
			u.granted = strings.HasPrefix(g, "GRANT ALL PRIVILEGES") || !slices.ContainsFunc(tenantPrivileges, func(p string) bool {
				return !slices.Contains(privs, p)
			})
		default:
			// Print the privilege and its object, not the rest (which may hold a password hash).
			if i := strings.Index(g, " TO "); i > 0 {
				g = g[:i]
			}
			u.foreign = strings.TrimPrefix(g, "GRANT ")
			return u, nil
		}
	}
	return u, nil
}

// otherGrantees lists the accounts with privileges on the tenant's database, through a
// database grant (its pattern matching the name: a wildcard grant counts) or a table grant,
// other than the administrative user and, with withTenant, the tenant's account.
func (s *settings) otherGrantees(ctx context.Context, q querier, n names, withTenant bool) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT User, Host FROM mysql.db WHERE Db = ? OR ? LIKE Db
		UNION SELECT User, Host FROM mysql.tables_priv WHERE Db = ?`, grantPattern(n.db), n.db, n.db)
	if err != nil {
		return nil, fmt.Errorf("look up grants on %s: %w", quoteIdent(n.db), err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var user, host string
		if err := rows.Scan(&user, &host); err != nil {
			return nil, err
		}
		if user == s.user || withTenant && user == n.user && host == s.tenantHost {
			continue
		}
		out = append(out, account(user, host))
	}
	return out, rows.Err()
}

// refusal is why a tenant must not take the account and database as they are, recorded for it
// or not: the account holds privileges elsewhere, or another account reaches the database.
func refusal(n names, acct string, u userInfo, others []string) error {
	switch {
	case u.foreign != "":
		return sdk.Owned("tenant.username", "the MySQL account %s already holds %s; choose another username", acct, u.foreign)
	case len(others) > 0:
		return sdk.Owned("tenant.schema", "the MySQL database %s is already granted to %s; choose another schema", quoteIdent(n.db), strings.Join(others, ", "))
	}
	return nil
}

// databaseExists says whether the tenant's database exists.
func databaseExists(ctx context.Context, q querier, n names) (bool, error) {
	var count int
	if err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", n.db).Scan(&count); err != nil {
		return false, fmt.Errorf("look up database %s: %w", quoteIdent(n.db), err)
	}
	return count > 0, nil
}

// passwordWorks logs in as the tenant: the only check that works whatever the server's
// password hashing.
func (s *settings) passwordWorks(ctx context.Context, n names, password string) (bool, error) {
	c, err := mysql.NewConnector(s.mysqlConfig(n.user, password, n.db))
	if err != nil {
		return false, err
	}
	db := sql.OpenDB(c)
	defer db.Close()
	err = db.PingContext(ctx)
	switch mysqlErrno(err) {
	case 0:
		if err != nil {
			return false, fmt.Errorf("log in as %s: %w", account(n.user, s.tenantHost), err)
		}
		return true, nil
	case 1045: // access denied: wrong password
		return false, nil
	default:
		return false, fmt.Errorf("log in as %s: %w", account(n.user, s.tenantHost), err)
	}
}

// DeleteTenant removes only what the caller owns: what the registry records for it, or records
// for nobody and EnsureTenant would adopt (an account holding privileges outside the tenant's
// database is not a tenant's, nor a database another account is granted). It revokes access
// first (the account, then its open sessions), then drops the database, so the tenant cannot
// write while its data goes away, and removes the owner records last, so that a retry after a
// failure finds them and finishes. A name recorded for another owner is left alone, and the
// call succeeds.
func (d *Driver) DeleteTenant(ctx context.Context, cfg datastore.Config, t datastore.Tenant) error {
	s, err := parseConfig(cfg, d.opts.KineImage)
	if err != nil {
		return err
	}
	n, err := tenantNames(t, s.user)
	if err != nil {
		return err
	}
	db, release, err := d.admin(s)
	if err != nil {
		return err
	}
	defer release()

	o := t.Owner()
	var schema, user part
	var userOurs, dbOurs bool
	err = d.withClaims(ctx, s, db, func(tx *sql.Tx) error {
		// Claiming what nobody records keeps a concurrent EnsureTenant of another owner from
		// adopting it while it goes away.
		if schema, user, err = claimTenant(ctx, tx, n, o); err != nil {
			return err
		}
		u, err := s.userState(ctx, tx, n)
		if err != nil {
			return err
		}
		others, err := s.otherGrantees(ctx, tx, n, true)
		if err != nil {
			return err
		}
		exists, err := databaseExists(ctx, tx, n)
		if err != nil {
			return err
		}
		// What nobody records is the caller's if EnsureTenant would adopt all of it.
		adopt := refusal(n, "", u, others) == nil
		userOurs = u.exists && u.foreign == "" && (user.state == claimMine || user.state == claimFresh && adopt)
		if !userOurs {
			// The tenant's account is not ours: its grant on the database counts as another's.
			if others, err = s.otherGrantees(ctx, tx, n, false); err != nil {
				return err
			}
		}
		dbOurs = exists && len(others) == 0 && (schema.state == claimMine || schema.state == claimFresh && adopt)
		// What was claimed just now and is not ours to remove is given back at once.
		for _, p := range []struct {
			part
			ours bool
		}{{schema, dbOurs}, {user, userOurs}} {
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

	if userOurs {
		acct := account(n.user, s.tenantHost)
		if _, err := db.ExecContext(ctx, "DROP USER IF EXISTS "+acct); err != nil {
			return fmt.Errorf("drop user %s: %w", acct, err)
		}
		s.killSessions(ctx, db, n.user)
	}
	if dbOurs {
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(n.db)); err != nil {
			return fmt.Errorf("drop database %s: %w", quoteIdent(n.db), err)
		}
	}
	for _, p := range []part{schema, user} {
		if p.state != claimOther {
			if err := unclaim(ctx, db, p, o); err != nil {
				return err
			}
		}
	}
	return nil
}

// killSessions ends the dropped account's open connections: MySQL keeps them alive after
// DROP USER, and an open transaction would hold DROP DATABASE. Best effort: without the
// privilege to kill (CONNECTION ADMIN), DROP DATABASE waits for them instead.
func (s *settings) killSessions(ctx context.Context, db *sql.DB, user string) {
	rows, err := db.QueryContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?", user)
	if err != nil {
		return
	}
	var ids []uint64
	for rows.Next() {
		var id uint64
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	rows.Close()
	for _, id := range ids {
		_, err := db.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id))
		if err != nil && mysqlErrno(err) != 1094 { // 1094: unknown thread, already gone
			return
		}
	}
}
