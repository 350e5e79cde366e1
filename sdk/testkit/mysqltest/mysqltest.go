// Package mysqltest gives tests MySQL DataStores: on the machine's server, a dedicated
// administrative account created for the test with the privileges the driver documents and
// dropped at its end; or a MariaDB server of the test's own that requires TLS. The MySQL
// plugin's tests and the core's migration tests share it.
package mysqltest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/openhcp/kamaji/sdk/datastore"
)

// Addr is the server: $KAMAJI_MYSQL_ADDR, default 127.0.0.1:3306.
func Addr() string {
	if a := os.Getenv("KAMAJI_MYSQL_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:3306"
}

// Root opens the server as its superuser: $KAMAJI_MYSQL_ROOT_USER (default root) with
// $KAMAJI_MYSQL_ROOT_PASSWORD (default empty), over TCP.
func Root(t testing.TB) *sql.DB {
	t.Helper()
	c := mysql.NewConfig()
	c.User = os.Getenv("KAMAJI_MYSQL_ROOT_USER")
	if c.User == "" {
		c.User = "root"
	}
	c.Passwd, c.Net, c.Addr, c.Timeout = os.Getenv("KAMAJI_MYSQL_ROOT_PASSWORD"), "tcp", Addr(), 5*time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	if err := db.PingContext(t.Context()); err != nil {
		db.Close()
		t.Fatalf("MySQL/MariaDB at %s as %s: %v (start it with: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd)", c.Addr, c.User, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// AdminPrivileges is the least the driver needs, as its documentation says.
const AdminPrivileges = "CREATE USER, CREATE, DROP, SELECT, INSERT, UPDATE, DELETE, INDEX, ALTER, PROCESS, CONNECTION ADMIN"

// DataStore creates an administrative account with AdminPrivileges (WITH GRANT OPTION) and a
// random password, and returns the DataStore configuration using it. The account is dropped
// when the test ends.
func DataStore(t testing.TB) datastore.Config {
	t.Helper()
	root := Root(t)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	user, password := "kamaji_admin_"+hex.EncodeToString(b[:4]), hex.EncodeToString(b)
	acct := "`" + user + "`@`%`"
	for _, stmt := range []string{
		"CREATE USER " + acct + " IDENTIFIED BY '" + password + "'",
		"GRANT " + AdminPrivileges + " ON *.* TO " + acct + " WITH GRANT OPTION",
	} {
		if _, err := root.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("%s: %v", strings.SplitN(stmt, " IDENTIFIED", 2)[0], err)
		}
	}
	t.Cleanup(func() { _, _ = root.Exec("DROP USER IF EXISTS " + acct) })
	return datastore.Config{
		Name:      "mysql-test",
		Driver:    "MySQL",
		Endpoints: []string{Addr()},
		Username:  user,
		Password:  password,
	}
}
