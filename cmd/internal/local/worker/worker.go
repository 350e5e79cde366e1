// Package worker is the local plane's real worker node: containerd with Debian's runc, the
// bridge CNI plugins and the kubelet, joined to a tenant with the real `kubeadm join`. Each
// worker lives in a network namespace of its own (a veth to the host) and a mount namespace of
// its own, where the host paths a node owns (/etc/kubernetes, /var/lib/kubelet,
// /run/containerd, /var/lib/cni, /var/log/pods, /var/log/containers, /lib/modules) are the
// worker's folders, so several workers share the machine and nothing of theirs stays on the
// host. Images come from a registry the worker serves on its own loopback (registry.go),
// holding images built on this machine (images.go): there is no registry to pull from here.
package worker

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Prefixes of the host objects a worker makes; down removes every one it finds.
const (
	NetNSPrefix  = "kamaji-worker-"
	VethPrefix   = "kwrk"
	CgroupPrefix = "kamaji-worker-"
	// RegistryAddr is where the worker's registry listens, on the worker's own loopback.
	RegistryAddr = "127.0.0.1:5000"
	// SandboxImage is the pod sandbox image containerd is pinned to (its default).
	SandboxImage = "registry.k8s.io/pause:3.10.2"
)

// HostPaths are the host folders a node writes to, seen by a worker as folders of its own.
// /lib/modules is kube-proxy's (read-only, and absent on some hosts, where containerd would
// make it).
var HostPaths = []string{"/etc/kubernetes", "/var/lib/kubelet", "/run/containerd", "/var/lib/cni", "/var/log/pods", "/var/log/containers", "/lib/modules"}

// Config of one worker node.
type Config struct {
	// Index numbers the worker on this machine: its name, namespaces and addresses derive from it.
	Index int
	// Name of the Node (default worker-<index>).
	Name string
	// Dir is the worker's state folder (absolute): the host paths, containerd's root, logs.
	Dir string
	// JoinCommand is what `kubeadm token create --print-join-command` printed.
	JoinCommand string
	// Binaries: kubeadm and kubelet of the tenant's version, containerd's folder (containerd,
	// containerd-shim-runc-v2, ctr) and the CNI plugins' folder.
	Kubeadm, Kubelet, ContainerdBin, CNIBin string
	// RegistryDir holds the images the worker's registry serves (images.go).
	RegistryDir string
	// BlockedFrom, when set, is a range (the admin cluster's pods) whose new connections to the
	// node the host rejects as unreachable.
	BlockedFrom string
	// HostNetwork runs the node in the host's network namespace at Address (the admin
	// cluster's node, admin.go): no namespace, link or forwarding rules of its own.
	HostNetwork bool
	Address     string
	// CgroupName replaces kamaji-worker-<index> as the kubelet's cgroup root.
	CgroupName string
	// Registry is where the node's registry listens (RegistryAddr when empty).
	Registry string
}

// Defaults fills the name.
func (c *Config) Defaults() {
	if c.Name == "" {
		c.Name = "worker-" + strconv.Itoa(c.Index)
	}
}

// NetNS is the worker's network namespace.
func (c Config) NetNS() string { return NetNSPrefix + strconv.Itoa(c.Index) }

// HostVeth and NodeVeth are the two ends of the worker's link to the host.
func (c Config) HostVeth() string { return fmt.Sprintf("%s%d-h", VethPrefix, c.Index) }
func (c Config) NodeVeth() string { return fmt.Sprintf("%s%d-n", VethPrefix, c.Index) }

// HostIP and NodeIP are the two ends' addresses, in 10.246.<index>.0/30.
func (c Config) HostIP() string { return fmt.Sprintf("10.246.%d.1", c.Index) }
func (c Config) NodeIP() string {
	if c.Address != "" {
		return c.Address
	}
	return fmt.Sprintf("10.246.%d.2", c.Index)
}
func (c Config) Subnet() string { return fmt.Sprintf("10.246.%d.0/30", c.Index) }

// Cgroup is the kubelet's cgroup root, the same path in every hierarchy.
func (c Config) Cgroup() string {
	if c.CgroupName != "" {
		return "/" + c.CgroupName
	}
	return "/" + CgroupPrefix + strconv.Itoa(c.Index)
}

// registry is the address of the node's registry.
func (c Config) registry() string {
	if c.Registry != "" {
		return c.Registry
	}
	return RegistryAddr
}

// path is a file in the worker's folder.
func (c Config) path(parts ...string) string {
	return filepath.Join(append([]string{c.Dir}, parts...)...)
}

// hostPathDir is the worker's folder standing for a host path.
func (c Config) hostPathDir(p string) string {
	return c.path("host", filepath.Base(filepath.Dir(p))+"-"+filepath.Base(p))
}

// Joined tells whether kubeadm join has finished for this worker (the kubelet's kubeconfig is
// written after its TLS bootstrap).
func (c Config) Joined() bool {
	_, err := os.Stat(filepath.Join(c.hostPathDir("/etc/kubernetes"), "kubelet.conf"))
	return err == nil
}
