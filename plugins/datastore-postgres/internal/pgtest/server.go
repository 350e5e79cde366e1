package pgtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit/freeport"
)

// StartTLS starts a PostgreSQL server of the test's own, in a temporary directory: TLS only
// (hostssl), SCRAM-SHA-256 authentication, listening on a free loopback port, with a superuser
// "postgres" whose password is returned in the DataStore. It runs initdb and pg_ctl from
// $KAMAJI_POSTGRES_BIN (default: the newest /usr/lib/postgresql/*/bin), as the "postgres" user
// when the test runs as root. It is stopped at the end of the test.
func StartTLS(t testing.TB) datastore.Config {
	t.Helper()
	bin := os.Getenv("KAMAJI_POSTGRES_BIN")
	if bin == "" {
		m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
		if len(m) == 0 {
			t.Fatal("no initdb: install Debian's postgresql (make test expects the machine's PostgreSQL) or set $KAMAJI_POSTGRES_BIN")
		}
		bin = filepath.Dir(m[len(m)-1])
	}
	dir, err := os.MkdirTemp("", "kamaji-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var run func(name string, args ...string) *exec.Cmd
	switch os.Geteuid() {
	case 0: // initdb refuses root
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal("running as root without a postgres user to run PostgreSQL as (Debian's postgresql package creates it)")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		defer func() { chownAll(t, dir, uid, gid) }()
		run = func(name string, args ...string) *exec.Cmd {
			chownAll(t, dir, uid, gid)
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(bin, name)}, args...)...)
		}
	default:
		run = func(name string, args ...string) *exec.Cmd { return exec.Command(filepath.Join(bin, name), args...) }
	}

	b := make([]byte, 12)
	_, _ = rand.Read(b)
	password := hex.EncodeToString(b)
	data := filepath.Join(dir, "data")
	write(t, filepath.Join(dir, "pw"), []byte(password), 0o600)
	if out, err := run("initdb", "-D", data, "-U", "postgres", "--auth=scram-sha-256", "--pwfile="+filepath.Join(dir, "pw"), "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	ca, cert, key := serverCerts(t)
	write(t, filepath.Join(data, "server.crt"), cert, 0o600)
	write(t, filepath.Join(data, "server.key"), key, 0o600)
	port := freePort(t)
	conf := fmt.Sprintf("listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nfsync = off\n", port, dir)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(conf)
	f.Close()
	write(t, filepath.Join(data, "pg_hba.conf"), []byte("hostssl all all 127.0.0.1/32 scram-sha-256\n"), 0o600)
	if out, err := run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	t.Cleanup(func() { _ = run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop").Run() })
	return datastore.Config{
		Name:      "postgres-tls-test",
		Driver:    "PostgreSQL",
		Endpoints: []string{fmt.Sprintf("127.0.0.1:%d", port)},
		CACert:    ca,
		Username:  "postgres",
		Password:  password,
	}
}

func chownAll(t testing.TB, dir string, uid, gid int) {
	_ = filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			_ = os.Lchown(p, uid, gid)
		}
		return nil
	})
}

func write(t testing.TB, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
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
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pgtest-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "postgres"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}
