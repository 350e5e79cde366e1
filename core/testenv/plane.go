// Package testenv starts a real admin control plane for integration tests: etcd and
// kube-apiserver built from the Go module proxy (hack/kube-bins.sh), our CRDs installed, and
// our admission webhooks registered against a webhook server the test runs. No fake client.
package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	dscontroller "github.com/openhcp/kamaji/core/controllers/datastore"
	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/tenant"
)

// Plane is a running etcd + kube-apiserver.
type Plane struct {
	// Dir holds the plane's certificates, data and logs.
	Dir string
	// Config reaches the apiserver as a member of system:masters.
	Config *rest.Config
	// EtcdURL is the plane's own (plain, loopback) etcd.
	EtcdURL string

	CA   *pki.KeyPair
	etcd *process
	api  *process
	keep bool // Stop leaves Dir (see Env.StopAfter)
}

// Options tune Start.
type Options struct {
	// Dir for state; a temporary folder when empty (removed by Stop).
	Dir string
	// ExtraAPIServerArgs are appended to kube-apiserver's flags.
	ExtraAPIServerArgs []string
	// Now is the manager's clock (StartEnv); time.Now when nil.
	Now func() time.Time
	// Tenants are the manager's tenant clients (StartEnv); the default when nil.
	Tenants *tenant.Clients
	// DataStoreRecheck is how often the manager re-validates a DataStore (StartEnv); the
	// manager's default when zero.
	DataStoreRecheck time.Duration
	// DataStoreUsage: how often and how much usage the manager counts per DataStore pass
	// (StartEnv); the manager's defaults for zero fields.
	DataStoreUsage dscontroller.UsagePolicy
}

// Start launches etcd and kube-apiserver and waits for /readyz.
func Start(ctx context.Context, opts Options) (_ *Plane, err error) {
	etcdBin, err := Binary("etcd")
	if err != nil {
		return nil, err
	}
	apiBin, err := Binary("kube-apiserver")
	if err != nil {
		return nil, err
	}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "kamaji-plane-"); err != nil {
			return nil, err
		}
	}
	p := &Plane{Dir: dir}
	defer func() {
		if err != nil {
			p.Stop()
		}
	}()

	ca, err := pki.NewCA("kamaji-test-plane-ca", 24*time.Hour, "")
	if err != nil {
		return nil, err
	}
	p.CA = ca
	serving, err := ca.Issue(pki.Request{
		CommonName: "kube-apiserver", DNSNames: []string{"localhost", "kubernetes.default.svc"},
		IPs: []net.IP{net.ParseIP("127.0.0.1")}, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Validity: 24 * time.Hour,
	})
	if err != nil {
		return nil, err
	}
	admin, err := ca.Issue(pki.Request{
		CommonName: "kamaji-test-admin", Organization: []string{"system:masters"},
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: 24 * time.Hour,
	})
	if err != nil {
		return nil, err
	}
	saKey, err := pki.NewKey("")
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"ca.crt": ca.CertPEM(), "apiserver.crt": serving.CertPEM()}
	if files["apiserver.key"], err = serving.KeyPEM(); err != nil {
		return nil, err
	}
	if files["sa.key"], err = pki.EncodeKey(saKey); err != nil {
		return nil, err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}

	p.etcd, err = startOnFreePorts(2, func(ports []int) (*process, error) {
		p.EtcdURL = "http://127.0.0.1:" + strconv.Itoa(ports[0])
		peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
		// A failed try may have begun a member on other ports.
		if err := os.RemoveAll(filepath.Join(dir, "etcd")); err != nil {
			return nil, err
		}
		return startProcess("etcd", filepath.Join(dir, "etcd.log"), etcdBin,
			"--name=plane", "--data-dir="+filepath.Join(dir, "etcd"),
			"--listen-client-urls="+p.EtcdURL, "--advertise-client-urls="+p.EtcdURL,
			"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
			"--initial-cluster=plane="+peerURL, "--unsafe-no-fsync", "--log-level=warn")
	}, func(e *process) error {
		return poll(ctx, e, "etcd /health", func() bool { return httpOK(http.DefaultClient, p.EtcdURL+"/health") })
	})
	if err != nil {
		return nil, err
	}

	keyPEM, err := admin.KeyPEM()
	if err != nil {
		return nil, err
	}
	p.api, err = startOnFreePorts(1, func(ports []int) (*process, error) {
		args := []string{
			"--etcd-servers=" + p.EtcdURL,
			"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(ports[0]),
			"--cert-dir=" + filepath.Join(dir, "certs"),
			"--tls-cert-file=" + filepath.Join(dir, "apiserver.crt"),
			"--tls-private-key-file=" + filepath.Join(dir, "apiserver.key"),
			"--client-ca-file=" + filepath.Join(dir, "ca.crt"),
			"--service-account-key-file=" + filepath.Join(dir, "sa.key"),
			"--service-account-signing-key-file=" + filepath.Join(dir, "sa.key"),
			"--service-account-issuer=https://kubernetes.default.svc",
			"--service-cluster-ip-range=10.0.0.0/16",
			"--authorization-mode=RBAC",
			"--allow-privileged=true",
			"--enable-priority-and-fairness=false",
			"--disable-admission-plugins=ServiceAccount",
			// The plane runs on loopback, which the default reconciler refuses to publish.
			"--endpoint-reconciler-type=none",
		}
		args = append(args, opts.ExtraAPIServerArgs...)
		p.Config = &rest.Config{
			Host: "https://127.0.0.1:" + strconv.Itoa(ports[0]),
			TLSClientConfig: rest.TLSClientConfig{
				CAData: ca.CertPEM(), CertData: admin.CertPEM(), KeyData: keyPEM,
			},
			QPS: 1000, Burst: 2000,
		}
		return startProcess("kube-apiserver", filepath.Join(dir, "kube-apiserver.log"), apiBin, args...)
	}, func(a *process) error {
		hc, err := rest.HTTPClientFor(p.Config)
		if err != nil {
			return err
		}
		return poll(ctx, a, "kube-apiserver /readyz", func() bool { return httpOK(hc, p.Config.Host+"/readyz") })
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Stop terminates the processes and removes the plane's folder.
func (p *Plane) Stop() {
	p.api.stop()
	p.etcd.stop()
	if p.Dir != "" && !p.keep && os.Getenv("KAMAJI_KEEP_PLANE") == "" {
		_ = os.RemoveAll(p.Dir)
	}
}

// WriteKubeconfig writes an admin kubeconfig of the plane to path, for processes run beside
// it (a manager under test, kubectl).
func (p *Plane) WriteKubeconfig(path string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["plane"] = &clientcmdapi.Cluster{Server: p.Config.Host, CertificateAuthorityData: p.Config.CAData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: p.Config.CertData, ClientKeyData: p.Config.KeyData}
	cfg.Contexts["plane"] = &clientcmdapi.Context{Cluster: "plane", AuthInfo: "admin"}
	cfg.CurrentContext = "plane"
	return clientcmd.WriteToFile(*cfg, path)
}

// APIServerLog is the path of kube-apiserver's log, for failure messages.
func (p *Plane) APIServerLog() string { return filepath.Join(p.Dir, "kube-apiserver.log") }

func httpOK(c *http.Client, url string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// ServingCert issues a loopback serving certificate from the plane's CA, written to dir as
// tls.crt/tls.key (the layout controller-runtime's webhook server reads), with the CA as ca.crt
// (what the manager gives the webhooks it puts in tenants).
func (p *Plane) ServingCert(dir string) error {
	kp, err := p.CA.Issue(pki.Request{
		CommonName: "kamaji-webhook", DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")},
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Validity: 24 * time.Hour,
	})
	if err != nil {
		return err
	}
	key, err := kp.KeyPEM()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), kp.CertPEM(), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), p.CA.CertPEM(), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "tls.key"), key, 0o600)
}

// waitTLS waits until something serves TLS at addr with a certificate from the plane's CA.
func (p *Plane) waitTLS(ctx context.Context, addr string) error {
	pool := x509.NewCertPool()
	pool.AddCert(p.CA.Cert)
	return poll(ctx, nil, "webhook server at "+addr, func() bool {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}
