package local

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

func (p *Plane) pkiFile(name string) string { return p.cfg.path("pki", name) }

// httpCheck answers nil when url returns 200.
func httpCheck(c *http.Client, url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
		}
		return nil
	}
}

var insecureClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}} //nolint:gosec // health checks of our own processes

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func (p *Plane) adminEtcd() component {
	url := "http://" + loopback(p.cfg.AdminEtcdPort)
	peer := "http://" + loopback(p.cfg.AdminEtcdPeerPort)
	return component{
		name: "etcd", bin: p.cfg.EtcdBin(),
		args: []string{
			"--name=admin", "--data-dir=" + p.cfg.path("etcd"),
			"--listen-client-urls=" + url, "--advertise-client-urls=" + url,
			"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=admin=" + peer, "--log-level=warn",
		},
		ready: httpCheck(http.DefaultClient, url+"/health"),
	}
}

func (p *Plane) apiServer() component {
	hc, _ := rest.HTTPClientFor(p.rest)
	return component{
		name: "kube-apiserver", bin: p.cfg.KubeBin("kube-apiserver"),
		args: []string{
			"--etcd-servers=http://" + loopback(p.cfg.AdminEtcdPort),
			"--bind-address=" + p.cfg.Gateway, "--advertise-address=" + p.cfg.Gateway,
			"--secure-port=" + strconv.Itoa(p.cfg.APIServerPort),
			"--cert-dir=" + p.cfg.path("pki", "apiserver-generated"),
			"--tls-cert-file=" + p.pkiFile("apiserver.crt"),
			"--tls-private-key-file=" + p.pkiFile("apiserver.key"),
			"--client-ca-file=" + p.pkiFile("ca.crt"),
			"--service-account-key-file=" + p.pkiFile("sa.key"),
			"--service-account-signing-key-file=" + p.pkiFile("sa.key"),
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-cluster-ip-range=" + p.cfg.ServiceCIDR,
			"--authorization-mode=Node,RBAC",
			"--allow-privileged=true",
			"--kubelet-preferred-address-types=InternalIP",
			"--kubelet-client-certificate=" + p.pkiFile("apiserver-kubelet-client.crt"),
			"--kubelet-client-key=" + p.pkiFile("apiserver-kubelet-client.key"),
			"--profiling=false",
		},
		ready:   httpCheck(hc, p.cfg.APIServerURL()+"/readyz"),
		timeout: 60 * time.Second,
	}
}

func (p *Plane) controllerManager() component {
	kc := p.cfg.AdminKubeconfig()
	return component{
		name: "kube-controller-manager", bin: p.cfg.KubeBin("kube-controller-manager"),
		args: []string{
			"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
			"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(p.cfg.ControllerManagerPort),
			"--leader-elect=false",
			"--controllers=*",
			"--use-service-account-credentials=true",
			"--service-account-private-key-file=" + p.pkiFile("sa.key"),
			"--root-ca-file=" + p.pkiFile("ca.crt"),
			"--cluster-signing-cert-file=" + p.pkiFile("ca.crt"),
			"--cluster-signing-key-file=" + p.pkiFile("ca.key"),
			"--service-cluster-ip-range=" + p.cfg.ServiceCIDR,
			"--cluster-cidr=" + p.cfg.PodCIDR,
			"--allocate-node-cidrs=false",
			"--profiling=false",
		},
		ready: httpCheck(insecureClient, "https://"+loopback(p.cfg.ControllerManagerPort)+"/healthz"),
	}
}

func (p *Plane) scheduler() component {
	kc := p.cfg.AdminKubeconfig()
	return component{
		name: "kube-scheduler", bin: p.cfg.KubeBin("kube-scheduler"),
		args: []string{
			"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
			"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(p.cfg.SchedulerPort),
			"--leader-elect=false", "--profiling=false",
		},
		ready: httpCheck(insecureClient, "https://"+loopback(p.cfg.SchedulerPort)+"/healthz"),
	}
}

func (p *Plane) processNode() component {
	return component{
		name: "node", bin: p.cfg.SelfExe,
		args: []string{
			"local", "node",
			"--state-dir=" + p.cfg.StateDir,
			"--kubeconfig=" + p.cfg.AdminKubeconfig(),
			"--name=" + p.cfg.NodeName,
			"--bridge=" + p.cfg.Bridge,
			"--pod-cidr=" + p.cfg.PodCIDR,
			"--gateway=" + p.cfg.Gateway,
			"--images=" + p.cfg.path("images.yaml"),
			"--cache=" + p.cfg.Cache,
			"--bin-dir=" + p.cfg.BinDir,
			"--kube-bins=" + kubeBinsScript(p.cfg.StateDir, p.cfg.BinDir),
			"--api-service=" + net.JoinHostPort(p.APIServiceIPOrEmpty(), "443"),
		},
		ready: func(ctx context.Context) error { return nodeReady(ctx, p.cs, p.cfg.NodeName) },
	}
}

// kubeBinsScript is the repository's hack/kube-bins.sh (see repoFile), or "" (the node then
// builds nothing on demand).
func kubeBinsScript(dirs ...string) string {
	return repoFile(filepath.Join("hack", "kube-bins.sh"), dirs...)
}

// repoFile finds a file of the repository above the state or the bin folder (`make up` puts both
// in the repository) or the working folder (the end-to-end tests'), or "".
func repoFile(rel string, dirs ...string) string {
	if wd, err := os.Getwd(); err == nil {
		dirs = append(dirs, wd)
	}
	for _, d := range dirs {
		for d != "" {
			p := filepath.Join(d, rel)
			if _, err := os.Stat(p); err == nil {
				return p
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	return ""
}

// APIServiceIPOrEmpty is the admin kubernetes Service address.
func (p *Plane) APIServiceIPOrEmpty() string { return p.cfg.APIServiceIP() }

// kubeProxyMinSyncPeriod is the least time between two of kube-proxy's rule syncs. Not 0: kube-proxy
// reads 0 as unset, its default of 1 s, and then a Service's new endpoint waited up to a second
// behind the previous sync (the figures: docs/operations.md, Local plane).
const kubeProxyMinSyncPeriod = "100ms"

func (p *Plane) kubeProxyConfig() error {
	cfg := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %s
hostnameOverride: %s
mode: iptables
clusterCIDR: %s
healthzBindAddress: %s
metricsBindAddress: %s
nodePortAddresses: ["%s/32", "127.0.0.1/32"]
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  minSyncPeriod: %s
  syncPeriod: 30s
`, p.cfg.AdminKubeconfig(), p.cfg.NodeName, p.cfg.PodCIDR, loopback(p.cfg.ProxyHealthPort), loopback(p.cfg.ProxyMetrics), p.cfg.Gateway, kubeProxyMinSyncPeriod)
	// kube-proxy exits when its configuration file changes: write it only when it differs.
	path := p.cfg.path("kube-proxy.yaml")
	if old, err := os.ReadFile(path); err == nil && string(old) == cfg {
		return nil
	}
	return os.WriteFile(path, []byte(cfg), 0o644)
}

func (p *Plane) kubeProxy() component {
	return component{
		name: "kube-proxy", bin: p.cfg.KubeBin("kube-proxy"),
		args:  []string{"--config=" + p.cfg.path("kube-proxy.yaml")},
		ready: httpCheck(http.DefaultClient, "http://"+loopback(p.cfg.ProxyHealthPort)+"/healthz"),
	}
}

func (p *Plane) dataStoreEtcd() component {
	return p.etcdStore("datastore-etcd", "datastore-etcd", p.cfg.DataStorePort, p.cfg.DataStorePeerPort)
}

// etcdStore is a multi-tenant etcd serving DataStores: TLS with client certificates from the
// plane's datastore CA, on the gateway so the pods reach it.
func (p *Plane) etcdStore(name, dataDir string, port, peerPort int) component {
	url := "https://" + net.JoinHostPort(p.cfg.Gateway, strconv.Itoa(port))
	peer := "http://" + loopback(peerPort)
	dir := p.cfg.path("pki", "datastore")
	return component{
		name: name, bin: p.cfg.EtcdBin(),
		args: []string{
			"--name=default", "--data-dir=" + p.cfg.path(dataDir),
			"--listen-client-urls=" + url, "--advertise-client-urls=" + url,
			"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=default=" + peer,
			"--cert-file=" + dir + "/server.crt", "--key-file=" + dir + "/server.key",
			"--trusted-ca-file=" + dir + "/ca.crt", "--client-cert-auth",
			"--log-level=warn",
		},
		ready: func(ctx context.Context) error {
			c, err := p.storeHTTPClient()
			if err != nil {
				return err
			}
			return httpCheck(c, url+"/health")(ctx)
		},
	}
}

func (p *Plane) storeHTTPClient() (*http.Client, error) {
	key, err := p.pki.Root.KeyPEM()
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(p.pki.Root.CertPEM(), key)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.pki.StoreCA.Cert)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool}, DisableKeepAlives: true}}, nil
}
