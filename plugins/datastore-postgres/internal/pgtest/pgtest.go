// Package pgtest gives tests a PostgreSQL DataStore on the machine's server: a dedicated
// administrative role (CREATEROLE, CREATEDB, not a superuser), created for the test and dropped
// at its end.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/openhcp/kamaji/sdk/datastore"
)

// Addr is the server: $KAMAJI_POSTGRES_ADDR, default 127.0.0.1:5432.
func Addr() string {
	if a := os.Getenv("KAMAJI_POSTGRES_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:5432"
}

// Root opens the server as its superuser: $KAMAJI_POSTGRES_ROOT_USER (default postgres) with
// $KAMAJI_POSTGRES_ROOT_PASSWORD (default empty), over TCP.
func Root(t testing.TB) *sql.DB {
	t.Helper()
	return RootOn(t, "postgres")
}

// RootOn opens database db of the server as its superuser, like Root.
func RootOn(t testing.TB, db string) *sql.DB {
	t.Helper()
	user := os.Getenv("KAMAJI_POSTGRES_ROOT_USER")
	if user == "" {
		user = "postgres"
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, os.Getenv("KAMAJI_POSTGRES_ROOT_PASSWORD")), Host: Addr(), Path: "/" + db, RawQuery: "sslmode=disable&connect_timeout=5"}
	conn, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.PingContext(t.Context()); err != nil {
		conn.Close()
		t.Fatalf("PostgreSQL at %s as %s: %v (start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start)", Addr(), user, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

var _ = stdlib.GetDefaultDriver

// DataStore creates an administrative role (LOGIN CREATEROLE CREATEDB, random password) and
// returns the DataStore configuration using it. The role is dropped when the test ends, with
// whatever it still owns: its databases (the plugin's owner registry) included, which DROP
// OWNED leaves.
func DataStore(t testing.TB) datastore.Config {
	t.Helper()
	root := Root(t)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	user, password := "kamaji_admin_"+hex.EncodeToString(b[:4]), hex.EncodeToString(b)
	if _, err := root.ExecContext(t.Context(), `CREATE ROLE "`+user+`" LOGIN CREATEROLE CREATEDB PASSWORD '`+password+`'`); err != nil {
		t.Fatalf("create role %s: %v", user, err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, db := range OwnedDatabases(t, root, user) {
			if _, err := root.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+db+`" WITH (FORCE)`); err != nil {
				t.Errorf("drop database %s of %s: %v", db, user, err)
			}
		}
		_, _ = root.ExecContext(ctx, `DROP OWNED BY "`+user+`"`)
		if _, err := root.ExecContext(ctx, `DROP ROLE IF EXISTS "`+user+`"`); err != nil {
			t.Errorf("drop role %s: %v", user, err)
		}
	})
	return datastore.Config{
		Name:       "postgres-test",
		Driver:     "PostgreSQL",
		Endpoints:  []string{Addr()},
		Username:   user,
		Password:   password,
		Parameters: map[string]string{"sslmode": "disable"},
	}
}

// OwnedDatabases lists the databases role owns.
func OwnedDatabases(t testing.TB, root *sql.DB, role string) []string {
	t.Helper()
	rows, err := root.QueryContext(context.Background(), "SELECT datname FROM pg_database WHERE datdba = (SELECT oid FROM pg_roles WHERE rolname = $1) ORDER BY datname", role)
	if err != nil {
		t.Errorf("databases of %s: %v", role, err)
		return nil
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Error(err)
			return out
		}
		out = append(out, name)
	}
	return out
}
