package driver

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/go-sql-driver/mysql"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk/datastore"
)

// tenantPrivileges is what kine needs on its database: its table, indexes and rows. No DROP,
// no GRANT OPTION, nothing outside the database.
var tenantPrivileges = []string{"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "INDEX", "ALTER"}

// EnsureTenant creates, each step tolerating what already exists: the database, the account
// (with its derived password) and the grant on that database only. An account or database that
// belongs to something else is refused (ALREADY_EXISTS), never widened. The password is set
// when the account is created and only rewritten when it no longer matches (the DataStore's
// secret was rotated).
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

	acct := account(n.user, s.tenantHost)
	u, err := s.userState(ctx, db, n)
	if err != nil {
		return datastore.Connection{}, err
	}
	if u.foreign != "" {
		return datastore.Connection{}, status.Errorf(codes.AlreadyExists,
			"tenant.username: the MySQL account %s already holds %s; choose another username", acct, u.foreign)
	}
	others, err := s.otherGrantees(ctx, db, n)
	if err != nil {
		return datastore.Connection{}, err
	}
	if len(others) > 0 {
		return datastore.Connection{}, status.Errorf(codes.AlreadyExists,
			"tenant.schema: the MySQL database %s is already granted to %s; choose another schema", quoteIdent(n.db), strings.Join(others, ", "))
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

func (s *settings) userState(ctx context.Context, db *sql.DB, n names) (userInfo, error) {
	var u userInfo
	var count int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = ?", n.user, s.tenantHost).Scan(&count); err != nil {
		return u, fmt.Errorf("look up account %s: %w", account(n.user, s.tenantHost), err)
	}
	if count == 0 {
		return u, nil
	}
	u.exists = true
	grants, err := queryStrings(ctx, db, "SHOW GRANTS FOR "+account(n.user, s.tenantHost))
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

// otherGrantees lists the accounts, other than the tenant's, with privileges on the tenant's
// database.
func (s *settings) otherGrantees(ctx context.Context, db *sql.DB, n names) ([]string, error) {
	rows, err := db.QueryContext(ctx, "SELECT User, Host FROM mysql.db WHERE Db = ?", grantPattern(n.db))
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
		if user != n.user || host != s.tenantHost {
			out = append(out, account(user, host))
		}
	}
	return out, rows.Err()
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

// DeleteTenant revokes access first (the account, then its open sessions) and then drops the
// database, so the tenant cannot write while its data goes away. An account holding privileges
// outside the tenant's database is not the tenant's and is left alone, and so is a database
// another account is granted (a tenant refused by EnsureTenant deletes nothing of the owner's).
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

	u, err := s.userState(ctx, db, n)
	if err != nil {
		return err
	}
	if u.exists && u.foreign == "" {
		acct := account(n.user, s.tenantHost)
		if _, err := db.ExecContext(ctx, "DROP USER IF EXISTS "+acct); err != nil {
			return fmt.Errorf("drop user %s: %w", acct, err)
		}
		s.killSessions(ctx, db, n.user)
	}
	others, err := s.otherGrantees(ctx, db, n)
	if err != nil {
		return err
	}
	if len(others) > 0 {
		return nil // another account's database (EnsureTenant refused this tenant): not ours to drop
	}
	if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(n.db)); err != nil {
		return fmt.Errorf("drop database %s: %w", quoteIdent(n.db), err)
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
