// Package natstest gives tests NATS DataStores: a nats-server of their own in operator (JWT)
// mode, optionally with TLS, and the machine's server (plain, no authentication). The NATS
// plugin's tests and the core's migration tests share it.
package natstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/internal/pki"
	"github.com/openhcp/kamaji/sdk/testkit/child"
	"github.com/openhcp/kamaji/sdk/testkit/freeport"
)

// ServerBinary is $KAMAJI_NATS_SERVER, else nats-server on the PATH, else /usr/sbin/nats-server.
func ServerBinary(t testing.TB) string {
	t.Helper()
	if b := os.Getenv("KAMAJI_NATS_SERVER"); b != "" {
		return b
	}
	if b, err := exec.LookPath("nats-server"); err == nil {
		return b
	}
	if _, err := os.Stat("/usr/sbin/nats-server"); err == nil {
		return "/usr/sbin/nats-server"
	}
	t.Fatal("no nats-server: install Debian's nats-server or set $KAMAJI_NATS_SERVER")
	return ""
}

// Operator is a nats-server in operator mode, with a system account and one account (with
// JetStream) that has a signing key.
type Operator struct {
	URL         string
	Account     string // public key
	SigningSeed string // seed of the account's signing key
	CA          []byte // PEM, when started with TLS
}

// DataStore is the JWT-mode DataStore on this server: username the account, password the
// signing key's seed.
func (o *Operator) DataStore() datastore.Config {
	return datastore.Config{
		Name:      "nats-operator-test",
		Driver:    "NATS",
		Endpoints: []string{strings.TrimPrefix(strings.TrimPrefix(o.URL, "nats://"), "tls://")},
		CACert:    o.CA,
		Username:  o.Account,
		Password:  o.SigningSeed,
	}
}

// must panics on a setup error: keys, claims and certificates are made in memory.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// StartOperator starts nats-server in operator mode (memory resolver, JetStream) on a free
// loopback port, with TLS when tls is set, and stops it at the end of the test.
func StartOperator(t testing.TB, withTLS bool) *Operator {
	t.Helper()
	dir := t.TempDir()
	okp := must(nkeys.CreateOperator())
	opub := must(okp.PublicKey())
	skp := must(nkeys.CreateAccount())
	spub := must(skp.PublicKey())
	sac := jwt.NewAccountClaims(spub)
	sac.Name = "SYS"
	sjwt := must(sac.Encode(okp))
	oc := jwt.NewOperatorClaims(opub)
	oc.Name = "kamaji-test"
	oc.SystemAccount = spub
	ojwt := must(oc.Encode(okp))

	akp := must(nkeys.CreateAccount())
	apub := must(akp.PublicKey())
	sig := must(nkeys.CreateAccount())
	sigpub := must(sig.PublicKey())
	sigseed := must(sig.Seed())
	ac := jwt.NewAccountClaims(apub)
	ac.Name = "KAMAJI"
	ac.SigningKeys.Add(sigpub)
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1, MaxAckPending: -1, MemoryMaxStreamBytes: -1, DiskMaxStreamBytes: -1}
	ajwt := must(ac.Encode(okp))

	port := freePort(t)
	if err := os.WriteFile(filepath.Join(dir, "operator.jwt"), []byte(ojwt), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`listen: "127.0.0.1:%d"
jetstream { store_dir: %q }
operator: %q
system_account: %s
resolver: MEMORY
resolver_preload: {
  %s: %s
  %s: %s
}
`, port, filepath.Join(dir, "js"), filepath.Join(dir, "operator.jwt"), spub, apub, ajwt, spub, sjwt)
	o := &Operator{URL: fmt.Sprintf("nats://127.0.0.1:%d", port), Account: apub, SigningSeed: string(sigseed)}
	if withTLS {
		ca, cert, key := serverCerts()
		for name, b := range map[string][]byte{"ca.crt": ca, "server.crt": cert, "server.key": key} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		conf += fmt.Sprintf("tls { cert_file: %q\n key_file: %q\n ca_file: %q }\n",
			filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"), filepath.Join(dir, "ca.crt"))
		o.URL, o.CA = fmt.Sprintf("tls://127.0.0.1:%d", port), ca
	}
	if err := os.WriteFile(filepath.Join(dir, "server.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, port, "-c", filepath.Join(dir, "server.conf"))
	return o
}

func start(t testing.TB, port int, args ...string) {
	t.Helper()
	cmd := exec.Command(ServerBinary(t), args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	done, err := child.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("nats-server exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server not listening after 15s: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	p, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// serverCerts makes a CA and a certificate for 127.0.0.1 and localhost signed by it.
func serverCerts() (ca, cert, key []byte) {
	caKP := must(pki.NewCA("natstest-ca"))
	srv := must(pki.Issue(caKP, "nats", nil, true, []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"}))
	return caKP.Cert, srv.Cert, srv.Key
}

// Plain is the machine's NATS server, without authentication: $KAMAJI_NATS_ADDR, default
// 127.0.0.1:4222. It fails the test when the server does not answer.
func Plain(t testing.TB) datastore.Config {
	t.Helper()
	addr := os.Getenv("KAMAJI_NATS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:4222"
	}
	nc, err := nats.Connect("nats://"+addr, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("NATS at %s: %v (start it with: start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log)", addr, err)
	}
	nc.Close()
	return datastore.Config{Name: "nats-plain-test", Driver: "NATS", Endpoints: []string{addr}}
}

// StartPlain starts nats-server with JetStream and, when user is set, plain user/password
// authentication, on a free loopback port, and stops it at the end of the test.
func StartPlain(t testing.TB, user, password string) datastore.Config {
	t.Helper()
	port := freePort(t)
	args := []string{"-a", "127.0.0.1", "-p", fmt.Sprint(port), "-js", "-sd", t.TempDir()}
	if user != "" {
		args = append(args, "--user", user, "--pass", password)
	}
	start(t, port, args...)
	return datastore.Config{Name: "nats-plain", Driver: "NATS", Endpoints: []string{fmt.Sprintf("127.0.0.1:%d", port)}, Username: user, Password: password}
}
