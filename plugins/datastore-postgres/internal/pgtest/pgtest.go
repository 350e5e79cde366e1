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
	user := os.Getenv("KAMAJI_POSTGRES_ROOT_USER")
	if user == "" {
		user = "postgres"
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, os.Getenv("KAMAJI_POSTGRES_ROOT_PASSWORD")), Host: Addr(), Path: "/postgres", RawQuery: "sslmode=disable&connect_timeout=5"}
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PingContext(t.Context()); err != nil {
		db.Close()
		t.Fatalf("PostgreSQL at %s as %s: %v (start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start)", Addr(), user, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var _ = stdlib.GetDefaultDriver

// DataStore creates an administrative role (LOGIN CREATEROLE CREATEDB, random password) and
// returns the DataStore configuration using it. The role is dropped when the test ends, with
// whatever it still owns.
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
		_, _ = root.ExecContext(ctx, `DROP OWNED BY "`+user+`"`)
		_, _ = root.ExecContext(ctx, `DROP ROLE IF EXISTS "`+user+`"`)
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
