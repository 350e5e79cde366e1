package mysqltest

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/internal/pki"
	"github.com/openhcp/kamaji/sdk/testkit/child"
	"github.com/openhcp/kamaji/sdk/testkit/freeport"
)

// StartTLS starts a MariaDB server of the test's own in a temporary directory, listening on a
// free loopback port and refusing connections without TLS (require_secure_transport), and
// returns a DataStore using an administrative account with AdminPrivileges created on it. It
// runs mariadb-install-db and mariadbd ($KAMAJI_MARIADB_BIN_DIR, default the PATH and /usr/sbin)
// and stops the server at the end of the test.
func StartTLS(t testing.TB) datastore.Config {
	t.Helper()
	install, err1 := lookPath("mariadb-install-db")
	server, err2 := lookPath("mariadbd")
	if err1 != nil || err2 != nil {
		t.Fatal("no mariadb-install-db or mariadbd: install Debian's mariadb-server (make test expects the machine's MariaDB) or set $KAMAJI_MARIADB_BIN_DIR")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	args := []string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal", "--skip-test-db"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	if out, err := exec.Command(install, args...).CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	ca, cert, key := serverCerts(t)
	for name, b := range map[string][]byte{"ca.crt": ca, "server.crt": cert, "server.key": key} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	args = []string{"--no-defaults", "--datadir=" + data, "--socket=" + filepath.Join(dir, "sock"), fmt.Sprintf("--port=%d", port),
		"--bind-address=127.0.0.1", "--skip-log-bin", "--pid-file=" + filepath.Join(dir, "pid"),
		"--ssl-ca=" + filepath.Join(dir, "ca.crt"), "--ssl-cert=" + filepath.Join(dir, "server.crt"), "--ssl-key=" + filepath.Join(dir, "server.key"),
		"--require-secure-transport=ON", "--innodb-flush-log-at-trx-commit=0"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.Command(server, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	done, err := child.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // mariadbd shuts down on TERM, not INT
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr, c.Timeout = "root", "tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second
	c.TLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	conn, err := mysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	root := sql.OpenDB(conn)
	t.Cleanup(func() { root.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for root.PingContext(t.Context()) != nil {
		select {
		case <-done:
			t.Fatalf("mariadbd exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mariadbd not ready after 30s: %s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	password := hex.EncodeToString(b)
	for _, stmt := range []string{
		"CREATE USER `kamaji`@`%` IDENTIFIED BY '" + password + "'",
		"GRANT " + AdminPrivileges + " ON *.* TO `kamaji`@`%` WITH GRANT OPTION",
	} {
		if _, err := root.ExecContext(t.Context(), stmt); err != nil {
			t.Fatal(err)
		}
	}
	return datastore.Config{
		Name:      "mysql-tls-test",
		Driver:    "MySQL",
		Endpoints: []string{c.Addr},
		CACert:    ca,
		Username:  "kamaji",
		Password:  password,
	}
}

func lookPath(name string) (string, error) {
	if d := os.Getenv("KAMAJI_MARIADB_BIN_DIR"); d != "" {
		return exec.LookPath(filepath.Join(d, name))
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return exec.LookPath(filepath.Join("/usr/sbin", name))
}

func freePort(t testing.TB) int {
	p, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// serverCerts makes a CA and a server certificate for 127.0.0.1 and localhost signed by it.
func serverCerts(t testing.TB) (ca, cert, key []byte) {
	t.Helper()
	caKP, err := pki.NewCA("mysqltest-ca")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := pki.Issue(caKP, "mariadb", nil, true, []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	return caKP.Cert, srv.Cert, srv.Key
}
