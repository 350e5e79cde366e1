// Package testkit starts real backends for plugin tests. Tests talk to the real thing rather than
// a fake, so a driver that passes here behaves the same in production.
package testkit

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/internal/pki"
	"github.com/openhcp/kamaji/sdk/testkit/child"
	"github.com/openhcp/kamaji/sdk/testkit/freeport"
)

// EtcdVersion is the etcd release the tests are written against.
const EtcdVersion = "v3.6.16"

// EtcdBinaryEnv names the environment variable that points at the etcd binary.
const EtcdBinaryEnv = "KAMAJI_ETCD_BIN"

// Etcd is a running single-member etcd set up like a production multi-tenant DataStore: TLS
// with client-certificate authentication and auth enabled, with a root user mapped from the
// client certificate CN "root". In a test binary it skips fsync (see start).
type Etcd struct {
	// Endpoints are "127.0.0.1:port", as written in a DataStore.
	Endpoints []string
	// CACert and CAKey (PEM) signed the server and client certificates.
	CACert []byte
	CAKey  []byte
	// RootCert and RootKey (PEM) are a client certificate with CN=root.
	RootCert []byte
	RootKey  []byte
	DataDir  string
}

// EtcdBinary returns the etcd binary: $KAMAJI_ETCD_BIN, else the one hack/kube-bins.sh builds
// into ~/.cache/kamaji (or $KAMAJI_CACHE).
func EtcdBinary() (string, error) {
	if p := os.Getenv(EtcdBinaryEnv); p != "" {
		return p, nil
	}
	cache := os.Getenv("KAMAJI_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache", "kamaji")
	}
	p := filepath.Join(cache, "etcd", EtcdVersion, "bin", "etcd")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("etcd binary not found at %s (set %s, or run hack/kube-bins.sh etcd): %w", p, EtcdBinaryEnv, err)
	}
	return p, nil
}

// StartEtcd starts etcd for the test and stops it, and removes its data, on t.Cleanup.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	ca, err := pki.NewCA("testkit-etcd-ca")
	if err != nil {
		t.Fatal(err)
	}
	return startEtcd(t, ca)
}

// StartEtcdSharingCA starts another etcd whose certificates come from other's CA, so that one
// client certificate authenticates to both (as kube-apiserver's --etcd-servers-overrides need).
func StartEtcdSharingCA(t testing.TB, other *Etcd) *Etcd {
	t.Helper()
	return startEtcd(t, pki.KeyPair{Cert: other.CACert, Key: other.CAKey})
}

func startEtcd(t testing.TB, ca pki.KeyPair) *Etcd {
	t.Helper()
	bin, err := EtcdBinary()
	if err != nil {
		t.Fatal(err)
	}
	server, err := pki.Issue(ca, "etcd", nil, true, []net.IP{net.IPv4(127, 0, 0, 1)}, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	root, err := pki.Issue(ca, "root", nil, false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, b := range map[string][]byte{"ca.crt": ca.Cert, "server.crt": server.Cert, "server.key": server.Key} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e := &Etcd{CACert: ca.Cert, CAKey: ca.Key, RootCert: root.Cert, RootKey: root.Key, DataDir: filepath.Join(dir, "data")}

	// Free ports are picked by listening and closing, which can race with another process; a
	// start that fails is retried on new ports.
	var lastErr error
	for range 3 {
		if lastErr = e.start(t, bin, dir); lastErr == nil {
			break
		}
		_ = os.RemoveAll(e.DataDir)
	}
	if lastErr != nil {
		t.Fatal(lastErr)
	}
	cli := e.client(t)
	defer cli.Close()
	if err := enableAuth(cli); err != nil {
		t.Fatalf("etcd: enable auth: %v", err)
	}
	return e
}

func (e *Etcd) start(t testing.TB, bin, dir string) error {
	ports, err := freeport.GetN(2)
	if err != nil {
		return err
	}
	client := "https://127.0.0.1:" + strconv.Itoa(ports[0])
	peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	var logs bytes.Buffer
	cmd := exec.Command(bin,
		"--name=default", "--data-dir="+e.DataDir,
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=default="+peer,
		"--cert-file="+filepath.Join(dir, "server.crt"), "--key-file="+filepath.Join(dir, "server.key"),
		"--trusted-ca-file="+filepath.Join(dir, "ca.crt"), "--client-cert-auth",
		"--log-level=warn",
	)
	if testing.Testing() {
		// A test's etcd skips fsync: on a busy machine (CI builds Kubernetes beside the tests)
		// a write waited on the disk past etcd's request timeout, failing a test on the
		// disk, not on the code. A killed etcd loses nothing without it (the kernel has the
		// writes); only power loss would. Benchmarks, not test binaries, keep fsync, as a
		// production DataStore does.
		cmd.Args = append(cmd.Args, "--unsafe-no-fsync")
	}
	cmd.Stdout, cmd.Stderr = &logs, &logs
	exited, err := child.Start(cmd)
	if err != nil {
		return fmt.Errorf("start etcd: %w", err)
	}

	e.Endpoints = []string{"127.0.0.1:" + strconv.Itoa(ports[0])}
	if err := e.waitReady(exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("etcd did not become ready: %w\n%s", err, tail(logs.Bytes()))
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	return nil
}

func (e *Etcd) waitReady(exited <-chan struct{}) error {
	cli, err := e.newClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cli.Status(ctx, e.Endpoints[0])
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("etcd exited")
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return err
		}
	}
}

func enableAuth(cli *clientv3.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.UserAddWithOptions(ctx, "root", "", &clientv3.UserAddOptions{NoPassword: true}); err != nil {
		return err
	}
	if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
		return err
	}
	_, err := cli.AuthEnable(ctx)
	return err
}

// Config returns a DataStore configuration for this etcd with driver "etcd", authenticating as
// root. A plugin serving another driver name uses ConfigFor.
func (e *Etcd) Config() datastore.Config { return e.ConfigFor("etcd") }

// ConfigFor returns the configuration of Config for the given driver: the DataStore's
// spec.driver, which must be one the plugin serves (the conformance kit checks it). The client
// certificate (CN root) is the plugin's admin identity; CACert and CAKey are the CA that signed
// etcd's server certificate and that etcd trusts for client certificates.
func (e *Etcd) ConfigFor(driver string) datastore.Config {
	return datastore.Config{
		Name:       "testkit-etcd",
		Driver:     driver,
		Endpoints:  append([]string(nil), e.Endpoints...),
		CACert:     e.CACert,
		CAKey:      e.CAKey,
		ClientCert: e.RootCert,
		ClientKey:  e.RootKey,
	}
}

// Client returns a root client, closed on t.Cleanup.
func (e *Etcd) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli := e.client(t)
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func (e *Etcd) client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := e.newClient()
	if err != nil {
		t.Fatal(err)
	}
	return cli
}

func (e *Etcd) newClient() (*clientv3.Client, error) {
	pair, err := tls.X509KeyPair(e.RootCert, e.RootKey)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.CACert)
	eps := make([]string, len(e.Endpoints))
	for i, ep := range e.Endpoints {
		eps[i] = "https://" + ep
	}
	return clientv3.New(clientv3.Config{
		Endpoints:   eps,
		DialTimeout: 5 * time.Second,
		TLS:         &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12},
		Logger:      zap.NewNop(),
	})
}

func tail(b []byte) []byte {
	if len(b) > 4096 {
		return b[len(b)-4096:]
	}
	return b
}
