// Package local is the local plane: on a bare Linux machine (root, no Docker, no cluster) it
// runs an admin cluster as host processes (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kube-proxy), a process node that runs the admin cluster's pods as real
// processes (package node), a multi-tenant etcd DataStore, the core manager with its plugins,
// and sample TenantControlPlanes. `kamaji local down` removes every trace.
package local

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/openhcp/kamaji/core/controlplane"
)

// Versions the plane runs; keep in step with hack/kube-bins.sh.
const (
	KubeVersion = "v1.37.2"
	EtcdVersion = "v3.6.16"
)

// Config of a local plane. The network and ports are fixed (one plane per machine: kube-proxy
// owns the host's KUBE-* chains); the state folder holds everything else.
type Config struct {
	// StateDir holds certificates, data, logs, pid files and kubeconfigs (absolute).
	StateDir string
	// Cache is the kamaji binary cache (~/.cache/kamaji): kube/<version>/bin, etcd/<version>/bin.
	Cache string
	// BinDir holds the plugin binaries built by `make build` (kamaji-datastore-etcd).
	BinDir string
	// SelfExe is this kamaji binary (the node and the manager run it).
	SelfExe string
	// Tenants is how many sample TenantControlPlanes to create (tenant-00, tenant-01...).
	Tenants int
	// Workers is how many worker nodes join the first sample tenant (package worker).
	Workers int
	// Node is the admin cluster's node: NodeProcess (the process node, package node) or
	// NodeKubelet (containerd and the kubelet, adminnode.go).
	Node string
	// DataStores the plane hosts (kine.go): etcd (the DataStore "default", always), mysql,
	// postgresql, nats.
	DataStores []string
	Out        io.Writer

	Bridge      string
	PodCIDR     string // the bridge's subnet; the pods' addresses
	Gateway     string // the bridge's address: node InternalIP, admin apiserver, DataStore etcd
	ServiceCIDR string
	NodeName    string

	AdminEtcdPort, AdminEtcdPeerPort int
	APIServerPort                    int
	ControllerManagerPort            int
	SchedulerPort                    int
	ProxyHealthPort, ProxyMetrics    int
	DataStorePort, DataStorePeerPort int
	// Helm is the helm binary that installs the charts; empty: the one hack/helm.sh builds.
	Helm string
	// ChartsDir holds kamaji-crds and kamaji; empty: the repository's charts folder.
	ChartsDir string
}

// DefaultConfig is the plane `make up` starts.
func DefaultConfig() Config {
	cache := os.Getenv("KAMAJI_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "kamaji")
	}
	self, _ := os.Executable()
	return Config{
		StateDir: ".local", Cache: cache, BinDir: filepath.Dir(self), SelfExe: self, Tenants: 1, Workers: 1, Out: os.Stdout, Node: NodeProcess,
		DataStores: []string{DataStoreEtcd}, Bridge: "kamaji0", PodCIDR: "10.244.0.0/16", Gateway: "10.244.0.1", ServiceCIDR: "10.96.0.0/16",
		NodeName:      "local-node",
		AdminEtcdPort: 12379, AdminEtcdPeerPort: 12380,
		APIServerPort:         6443,
		ControllerManagerPort: 10257, SchedulerPort: 10259,
		ProxyHealthPort: 10256, ProxyMetrics: 10249,
		DataStorePort: 2379, DataStorePeerPort: 2380,
	}
}

func (c *Config) normalize() error {
	abs, err := filepath.Abs(c.StateDir)
	if err != nil {
		return err
	}
	c.StateDir = abs
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Tenants < 0 {
		return fmt.Errorf("--tenants must not be negative")
	}
	if _, err := controlplane.ParseProfile(os.Getenv(ProfileEnv)); err != nil {
		return fmt.Errorf("$%s: %w", ProfileEnv, err)
	}
	if c.Workers < 0 || c.Workers > MaxWorkers {
		return fmt.Errorf("--workers must be between 0 and %d (each worker takes a /30 of 10.246.0.0/16)", MaxWorkers)
	}
	switch c.Node {
	case "":
		c.Node = NodeProcess
	case NodeProcess, NodeKubelet:
	default:
		return fmt.Errorf("--node %q: must be %s or %s", c.Node, NodeProcess, NodeKubelet)
	}
	if _, _, err := net.ParseCIDR(c.PodCIDR); err != nil {
		return fmt.Errorf("pod CIDR: %w", err)
	}
	ds, err := ParseDataStores(c.DataStores)
	if err != nil {
		return err
	}
	c.DataStores = ds
	return nil
}

func (c *Config) path(parts ...string) string {
	return filepath.Join(append([]string{c.StateDir}, parts...)...)
}

// KubeBin is a Kubernetes binary of the plane's version in the cache.
func (c *Config) KubeBin(name string) string {
	return filepath.Join(c.Cache, "kube", KubeVersion, "bin", name)
}

// EtcdBin is the etcd binary in the cache.
func (c *Config) EtcdBin() string {
	return filepath.Join(c.Cache, "etcd", EtcdVersion, "bin", "etcd")
}

// corednsBin is CoreDNS as hack/node-bins.sh builds it.
func (c *Config) corednsBin() string {
	return filepath.Join(c.Cache, "coredns", CoreDNSVersion, "bin", "coredns")
}

// konnectivityAgentBin is the konnectivity agent as hack/kube-bins.sh builds it.
func (c *Config) konnectivityAgentBin() string {
	return filepath.Join(c.Cache, "konnectivity", KonnectivityVersion, "bin", "proxy-agent")
}

// Kubectl is the kubectl the printed command line uses.
func (c *Config) Kubectl() string { return c.KubeBin("kubectl") }

// AdminKubeconfig is the admin cluster's kubeconfig (system:masters).
func (c *Config) AdminKubeconfig() string { return c.path("admin.kubeconfig") }

// TenantKubeconfig is where a tenant's kubeconfig is written.
func (c *Config) TenantKubeconfig(tcp string) string { return c.path(tcp + ".kubeconfig") }

// APIServerURL is the admin apiserver.
func (c *Config) APIServerURL() string {
	return "https://" + net.JoinHostPort(c.Gateway, strconv.Itoa(c.APIServerPort))
}

// DataStoreEndpoint is the multi-tenant etcd, as written in the DataStore.
func (c *Config) DataStoreEndpoint() string {
	return net.JoinHostPort(c.Gateway, strconv.Itoa(c.DataStorePort))
}

// APIServiceIP is the first address of the service range: the admin cluster's kubernetes Service.
func (c *Config) APIServiceIP() string { return c.serviceIP(1) }

// DNSServiceIP is the admin cluster's DNS Service (kube-system/kube-dns) with a kubelet node:
// the tenth address of the service range, as kubeadm's.
func (c *Config) DNSServiceIP() string { return c.serviceIP(10) }

// serviceIP is the i-th address of the service range ("" when the range does not parse).
func (c *Config) serviceIP(i byte) string {
	_, n, err := net.ParseCIDR(c.ServiceCIDR)
	if err != nil {
		return ""
	}
	ip := n.IP.To4()
	return net.IPv4(ip[0], ip[1], ip[2], ip[3]+i).String()
}

// TenantName is the i-th sample tenant.
func TenantName(i int) string { return fmt.Sprintf("tenant-%02d", i) }
