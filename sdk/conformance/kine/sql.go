package kine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/openhcp/kamaji/sdk/datastore"
)

// kine's schemas (v0.17), created by a session in its own database the way kine does at start.
var (
	mysqlSchema = []string{
		`CREATE TABLE IF NOT EXISTS kine
			(
				id BIGINT UNSIGNED AUTO_INCREMENT,
				name VARCHAR(630) CHARACTER SET ascii,
				created INTEGER,
				deleted INTEGER,
				create_revision BIGINT UNSIGNED,
				prev_revision BIGINT UNSIGNED,
				lease INTEGER,
				value MEDIUMBLOB,
				old_value MEDIUMBLOB,
				PRIMARY KEY (id)
			)`,
		`CREATE INDEX kine_name_index ON kine (name)`,
		`CREATE INDEX kine_name_id_index ON kine (name,id)`,
		`CREATE INDEX kine_id_deleted_index ON kine (id,deleted)`,
		`CREATE INDEX kine_prev_revision_index ON kine (prev_revision)`,
		`CREATE UNIQUE INDEX kine_name_prev_revision_uindex ON kine (name, prev_revision)`,
	}
	postgresSchema = []string{
		`CREATE TABLE IF NOT EXISTS kine
			(
				id BIGSERIAL PRIMARY KEY,
				name text COLLATE "C",
				created INTEGER,
				deleted INTEGER,
				create_revision BIGINT,
				prev_revision BIGINT,
				lease INTEGER,
				value bytea,
				old_value bytea
			)`,
		`CREATE INDEX IF NOT EXISTS kine_name_index ON kine (name)`,
		`CREATE INDEX IF NOT EXISTS kine_name_id_index ON kine (name,id)`,
		`CREATE INDEX IF NOT EXISTS kine_id_deleted_index ON kine (id,deleted)`,
		`CREATE INDEX IF NOT EXISTS kine_prev_revision_index ON kine (prev_revision)`,
		`CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision_uindex ON kine (name, prev_revision)`,
		`CREATE INDEX IF NOT EXISTS kine_list_query_index on kine(name, id DESC, deleted)`,
	}
)

// sqlSession reaches databases of one server with one tenant's credentials.
type sqlSession struct {
	own     string
	dialect string // "mysql" or "postgres"
	// open connects to a database with the session's credentials.
	open func(db string) (*sql.DB, error)

	mu  sync.Mutex
	dbs map[string]*sql.DB
}

func (s *sqlSession) Namespace() string { return s.own }

func (s *sqlSession) db(name string) (*sql.DB, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if db, ok := s.dbs[name]; ok {
		return db, nil
	}
	db, err := s.open(name)
	if err != nil {
		return nil, err
	}
	s.dbs[name] = db
	return db, nil
}

func (s *sqlSession) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, db := range s.dbs {
		_ = db.Close()
		delete(s.dbs, k)
	}
	return nil
}

// q rewrites ? placeholders for PostgreSQL.
func (s *sqlSession) q(query string) string {
	if s.dialect != "postgres" {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// setup creates kine's table in the session's own database, as kine does when it starts.
func (s *sqlSession) setup(ctx context.Context) error {
	db, err := s.db(s.own)
	if err != nil {
		return err
	}
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("connect to database %q with the tenant's credentials: %w", s.own, err)
	}
	schema := postgresSchema
	if s.dialect == "mysql" {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE table_schema = DATABASE() AND table_name = 'kine'").Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		schema = mysqlSchema
	}
	for _, stmt := range schema {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			var me *mysql.MySQLError
			if errors.As(err, &me) && me.Number == 1061 { // index exists
				continue
			}
			return fmt.Errorf("create kine's table in %q as the tenant: %w", s.own, err)
		}
	}
	return nil
}

// Put writes a new revision of key as kine's Create or Update does.
func (s *sqlSession) Put(ctx context.Context, ns, key string, value []byte) error {
	db, err := s.db(ns)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit, a no-op
	var id, createRev, deleted sql.NullInt64
	var old []byte
	err = tx.QueryRowContext(ctx, s.q("SELECT id, create_revision, deleted, value FROM kine WHERE name = ? ORDER BY id DESC LIMIT 1 FOR UPDATE"), key).
		Scan(&id, &createRev, &deleted, &old)
	insert := s.q("INSERT INTO kine (name, created, deleted, create_revision, prev_revision, lease, value, old_value) VALUES (?, ?, 0, ?, ?, 0, ?, ?)")
	if value == nil {
		value = []byte{}
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = tx.ExecContext(ctx, insert, key, 1, 0, 0, value, nil)
	case err != nil:
	case deleted.Int64 != 0:
		_, err = tx.ExecContext(ctx, insert, key, 1, 0, id.Int64, value, nil)
	default:
		cr := createRev.Int64
		if cr == 0 {
			cr = id.Int64
		}
		if old == nil {
			old = []byte{}
		}
		_, err = tx.ExecContext(ctx, insert, key, 0, cr, id.Int64, value, old)
	}
	if err != nil {
		return err
	}
	return tx.Commit()
}

// Get reads key's current value as kine does: its latest row, unless that row is a deletion.
func (s *sqlSession) Get(ctx context.Context, ns, key string) ([]byte, bool, error) {
	db, err := s.db(ns)
	if err != nil {
		return nil, false, err
	}
	var deleted sql.NullInt64
	var value []byte
	err = db.QueryRowContext(ctx, s.q("SELECT deleted, value FROM kine WHERE name = ? ORDER BY id DESC LIMIT 1"), key).Scan(&deleted, &value)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	case deleted.Int64 != 0:
		return nil, false, nil
	}
	if value == nil {
		value = []byte{}
	}
	return value, true, nil
}

func tlsFromFiles(ca, cert, key, serverName string) (*tls.Config, error) {
	if ca == "" && cert == "" {
		return nil, nil
	}
	c := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, err
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", ca)
		}
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// MySQL

// mysqlDSN parses the sidecar's endpoint as kine does.
func mysqlDSN(sc *Sidecar) (*mysql.Config, error) {
	_, dsn, _ := strings.Cut(sc.Endpoint(), "://")
	c, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("kine endpoint: %w", err)
	}
	if c.DBName == "" {
		c.DBName = "kubernetes"
	}
	ca, cert, key := sc.TLSFiles()
	host, _, _ := net.SplitHostPort(c.Addr)
	if c.TLS, err = tlsFromFiles(ca, cert, key, host); err != nil {
		return nil, err
	}
	c.Timeout = 10 * time.Second
	return c, nil
}

func openMySQL(ctx context.Context, sc *Sidecar) (namespaced, error) {
	c, err := mysqlDSN(sc)
	if err != nil {
		return nil, err
	}
	s := &sqlSession{own: c.DBName, dialect: "mysql", dbs: map[string]*sql.DB{}, open: func(db string) (*sql.DB, error) {
		cc := c.Clone()
		cc.DBName = db
		conn, err := mysql.NewConnector(cc)
		if err != nil {
			return nil, err
		}
		return sql.OpenDB(conn), nil
	}}
	if err := s.setup(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// mysqlAdmin connects with the DataStore's credentials, read like the MySQL plugin reads them:
// one endpoint host[:port] (mysql:// optional), TLS when caCert is set.
func mysqlAdmin(ds datastore.Config) (*sql.DB, error) {
	if len(ds.Endpoints) == 0 {
		return nil, errors.New("no endpoint")
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(ds.Endpoints[0], "mysql://"), "tcp://"), "/")
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host, addr = addr, net.JoinHostPort(addr, "3306")
	}
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.Timeout = ds.Username, ds.Password, "tcp", addr, 10*time.Second
	if len(ds.CACert) > 0 {
		c.TLS = &tls.Config{RootCAs: x509.NewCertPool(), ServerName: host, MinVersion: tls.VersionTLS12}
		c.TLS.RootCAs.AppendCertsFromPEM(ds.CACert)
		if len(ds.ClientCert) > 0 {
			pair, err := tls.X509KeyPair(ds.ClientCert, ds.ClientKey)
			if err != nil {
				return nil, err
			}
			c.TLS.Certificates = []tls.Certificate{pair}
		}
	}
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}

// mysqlResidue lists the tenant's accounts (any host), their grants, grants on the tenant's
// database and the database itself.
func mysqlResidue(ctx context.Context, ds datastore.Config, sc *Sidecar) ([]string, error) {
	c, err := mysqlDSN(sc)
	if err != nil {
		return nil, err
	}
	db, err := mysqlAdmin(ds)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var residue []string
	rows, err := db.QueryContext(ctx, "SELECT Host FROM mysql.user WHERE User = ?", c.User)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var host string
		if err := rows.Scan(&host); err != nil {
			rows.Close()
			return nil, err
		}
		residue = append(residue, fmt.Sprintf("account %q@%q", c.User, host))
	}
	rows.Close()
	pattern := strings.NewReplacer(`\`, `\\`, `_`, `\_`, `%`, `\%`).Replace(c.DBName)
	rows, err = db.QueryContext(ctx, "SELECT User, Host, Db FROM mysql.db WHERE User = ? OR Db = ?", c.User, pattern)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var user, host, dbName string
		if err := rows.Scan(&user, &host, &dbName); err != nil {
			rows.Close()
			return nil, err
		}
		residue = append(residue, fmt.Sprintf("grant on %q to %q@%q", dbName, user, host))
	}
	rows.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE schema_name = ?", c.DBName).Scan(&n); err != nil {
		return nil, err
	}
	if n > 0 {
		residue = append(residue, fmt.Sprintf("database %q", c.DBName))
	}
	return residue, nil
}

// PostgreSQL

// postgresConfig parses the sidecar's endpoint as kine does: "postgres://" + the rest, the
// database defaulting to "kubernetes" and lowercased, TLS files from --ca-file, --cert-file and
// --key-file as sslrootcert, sslcert and sslkey with sslmode=verify-full.
func postgresConfig(sc *Sidecar) (*pgx.ConnConfig, error) {
	_, rest, _ := strings.Cut(sc.Endpoint(), "://")
	u, err := url.Parse("postgres://" + rest)
	if err != nil {
		return nil, fmt.Errorf("kine endpoint: %w", err)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/kubernetes"
	}
	u.Path = strings.ToLower(u.Path)
	q := u.Query()
	params := url.Values{}
	sslmode := ""
	ca, cert, key := sc.TLSFiles()
	for _, f := range []struct{ name, file string }{{"sslcert", cert}, {"sslkey", key}, {"sslrootcert", ca}} {
		if _, ok := q[f.name]; f.file != "" && !ok {
			params.Add(f.name, f.file)
			sslmode = "verify-full"
		}
	}
	if _, ok := q["sslmode"]; !ok && sslmode != "" {
		params.Add("sslmode", sslmode)
	}
	for k, v := range q {
		params.Add(k, v[0])
	}
	u.RawQuery = params.Encode()
	c, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("kine endpoint: %w", err)
	}
	c.ConnectTimeout = 10 * time.Second
	return c, nil
}

func openPostgres(ctx context.Context, sc *Sidecar) (namespaced, error) {
	c, err := postgresConfig(sc)
	if err != nil {
		return nil, err
	}
	s := &sqlSession{own: c.Database, dialect: "postgres", dbs: map[string]*sql.DB{}, open: func(db string) (*sql.DB, error) {
		cc := c.Copy()
		cc.Database = db
		return stdlib.OpenDB(*cc), nil
	}}
	if err := s.setup(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// postgresAdmin connects with the DataStore's credentials, read like the PostgreSQL plugin
// reads them: one endpoint host[:port], TLS when caCert is set, else parameters.sslmode.
func postgresAdmin(ds datastore.Config) (*sql.DB, error) {
	if len(ds.Endpoints) == 0 {
		return nil, errors.New("no endpoint")
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(ds.Endpoints[0], "postgres://"), "postgresql://"), "/")
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, "5432"
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(ds.Username, ds.Password), Host: net.JoinHostPort(host, port), Path: "/postgres"}
	q := url.Values{"sslmode": {"disable"}, "connect_timeout": {"10"}}
	if m := ds.Parameters["sslmode"]; m != "" && len(ds.CACert) == 0 {
		q.Set("sslmode", m)
	}
	u.RawQuery = q.Encode()
	c, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, err
	}
	if len(ds.CACert) > 0 {
		c.TLSConfig = &tls.Config{RootCAs: x509.NewCertPool(), ServerName: host, MinVersion: tls.VersionTLS12}
		c.TLSConfig.RootCAs.AppendCertsFromPEM(ds.CACert)
		if len(ds.ClientCert) > 0 {
			pair, err := tls.X509KeyPair(ds.ClientCert, ds.ClientKey)
			if err != nil {
				return nil, err
			}
			c.TLSConfig.Certificates = []tls.Certificate{pair}
		}
		c.Fallbacks = nil
	}
	return stdlib.OpenDB(*c), nil
}

// postgresResidue lists the tenant's role, what it still owns or is granted, and the database.
func postgresResidue(ctx context.Context, ds datastore.Config, sc *Sidecar) ([]string, error) {
	c, err := postgresConfig(sc)
	if err != nil {
		return nil, err
	}
	db, err := postgresAdmin(ds)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var residue []string
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM pg_roles WHERE rolname = $1", c.User).Scan(&n); err != nil {
		return nil, err
	}
	if n > 0 {
		residue = append(residue, fmt.Sprintf("role %q", c.User))
	}
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM pg_database WHERE datname = $1", c.Database).Scan(&n); err != nil {
		return nil, err
	}
	if n > 0 {
		residue = append(residue, fmt.Sprintf("database %q", c.Database))
	}
	return residue, nil
}
