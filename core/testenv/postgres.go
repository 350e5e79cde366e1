package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/openhcp/kamaji/sdk/datastore"
)

// PostgresAdmin creates a DataStore administrative role as the docs ask for one (LOGIN, CREATEROLE,
// CREATEDB, a password; not a superuser) on the machine's PostgreSQL, dropped at the end with
// the databases it owns.
func PostgresAdmin(t testing.TB, role string) datastore.Config {
	t.Helper()
	host, port, _ := strings.Cut(PostgresAddr(), ":")
	psql := func(sql string) error {
		out, err := exec.Command("psql", "-h", host, "-p", port, "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAtc", sql).CombinedOutput()
		if err != nil {
			return fmt.Errorf("psql %q: %v: %s", sql, err, out)
		}
		return nil
	}
	password := role + "_pw"
	if err := psql(`CREATE ROLE "` + role + `" LOGIN CREATEROLE CREATEDB PASSWORD '` + password + `'`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		out, _ := exec.Command("psql", "-h", host, "-p", port, "-U", "postgres", "-d", "postgres", "-qAtc",
			`SELECT datname FROM pg_database WHERE datdba = (SELECT oid FROM pg_roles WHERE rolname = '`+role+`')`).Output()
		for _, db := range strings.Fields(string(out)) {
			_ = psql(`DROP DATABASE IF EXISTS "` + db + `" WITH (FORCE)`)
		}
		_ = psql(`DROP OWNED BY "` + role + `"`)
		if err := psql(`DROP ROLE IF EXISTS "` + role + `"`); err != nil {
			t.Error(err)
		}
	})
	return datastore.Config{Name: "pg", Driver: "PostgreSQL", Endpoints: []string{PostgresAddr()}, Username: role, Password: password, Parameters: map[string]string{"sslmode": "disable"}}
}

// PostgresAddr is the machine's PostgreSQL (hack/services.sh), or KAMAJI_POSTGRES_ADDR.
func PostgresAddr() string {
	if a := os.Getenv("KAMAJI_POSTGRES_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:5432"
}
