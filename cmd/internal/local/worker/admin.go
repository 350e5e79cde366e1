package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/openhcp/kamaji/cmd/internal/local/kubebuild"
)

// Admin is what the admin cluster's own node needs besides its Config: it is not joined with
// kubeadm (the admin cluster has no bootstrap tokens) but given a kubeconfig with a
// system:node certificate of the admin CA, and it runs in the host's network namespace, its
// pods on the plane's bridge.
type Admin struct {
	// Kubeconfig is the kubelet's kubeconfig (written by the plane, outside the node's folders).
	Kubeconfig string
	// KubeletConfig is the body of /var/lib/kubelet/config.yaml (AdminKubeletConfig).
	KubeletConfig string
	// Bridge, PodCIDR, RangeStart and Gateway are the pod network: the plane's bridge and
	// range, the node's pods from RangeStart on, their gateway the bridge's address.
	Bridge, PodCIDR, RangeStart, Gateway string
	// Cache is the kamaji cache folder: the registry makes a tenant version's control-plane
	// images from its kube/<version>/bin on their first pull (ControlPlaneSource). KubeBins is
	// hack/kube-bins.sh, run first when that folder lacks them; empty: such a pull fails.
	Cache, KubeBins string
}

// AdminCNIConfig is the admin node's pod network: the plane's bridge (it exists, with the
// gateway's address), no masquerade and no port mappings (both would write rules into the
// host's tables, where the plane's own rules and kube-proxy's already route the pods).
func (a Admin) AdminCNIConfig() string {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "kamaji-admin",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": a.Bridge, "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": a.PodCIDR, "rangeStart": a.RangeStart, "gateway": a.Gateway}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": "/var/lib/cni/networks",
				},
			},
		},
	}
	data, _ := json.MarshalIndent(conf, "", "  ")
	return string(data) + "\n"
}

// AdminKubeletConfig is the admin node's kubelet configuration: what kubeadm would write for a
// control-plane node (webhook authentication and authorization against the admin CA, the
// cluster's DNS), fitted to this machine (cgroup v1 without systemd, a cgroup root of its own,
// no swap check) and to its job (hundreds of control-plane pods, no eviction on a small disk).
func (c Config) AdminKubeletConfig(clientCA, clusterDNS string, healthzPort int) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %[2]d
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %[3]s
authorization:
  mode: Webhook
clusterDNS: [%[4]s]
clusterDomain: cluster.local
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: %[5]s
failCgroupV1: false
failSwapOn: false
maxPods: 1000
serializeImagePulls: false
evictionHard:
  memory.available: "0%%"
  nodefs.available: "0%%"
  imagefs.available: "0%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
rotateCertificates: false
`, c.NodeIP(), healthzPort, clientCA, clusterDNS, c.Cgroup())
}

// RunAdmin is the admin cluster's node. The plane starts it in a mount namespace of its own
// (in the host's network namespace): it joins its cgroup (so the runtime's shims, which leave
// the kubelet's tree, are found by down), shows its folders at the host paths, serves the
// registry, runs containerd and the kubelet. It returns when ctx ends, after stopping both.
func RunAdmin(ctx context.Context, c Config, a Admin, log io.Writer) error {
	c.Defaults()
	logf := func(format string, args ...any) {
		fmt.Fprintf(log, "%s %s\n", time.Now().Format(time.RFC3339), fmt.Sprintf(format, args...))
	}
	if err := joinCgroup(c.Cgroup() + "/runtime"); err != nil {
		return err
	}
	if err := c.mountHostPaths(); err != nil {
		return err
	}
	kubeconfig, err := os.ReadFile(a.Kubeconfig)
	if err != nil {
		return err
	}
	for name, body := range map[string]string{
		"containerd.toml":              c.ContainerdConfig(),
		"certs.d/_default/hosts.toml":  RegistryHosts(c.registry()),
		"cni/10-kamaji-admin.conflist": a.AdminCNIConfig(),
		"logs/.keep":                   "",
		"containerd/.keep":             "",
		"opt/.keep":                    "",
	} {
		if err := writeFile(c.path(name), body); err != nil {
			return err
		}
	}
	if err := writeFile(kubeletConfig, a.KubeletConfig); err != nil {
		return err
	}
	// It holds the node's key: for root's eyes only.
	if err := os.WriteFile(kubeletConf, kubeconfig, 0o600); err != nil {
		return err
	}
	reg := Registry{Dir: c.RegistryDir}
	if a.Cache != "" {
		src := &ControlPlaneSource{Cache: a.Cache, Registry: c.RegistryDir, Logf: logf,
			// The kubelet pulls again after its back-off, 5 minutes at most: a build nobody has
			// asked for in 6 minutes is for a pod that is gone.
			Builds: &kubebuild.Builds{Script: a.KubeBins, Cache: a.Cache, LogDir: c.path("logs"), Ctx: ctx, Unwanted: 6 * time.Minute}}
		reg.Fill = src.Fill
	}
	containerd, err := c.startRuntime(ctx, reg, logf)
	if err != nil {
		return err
	}
	kubelet := &supervised{name: "kubelet", bin: c.Kubelet, log: c.LogPath("kubelet"), logf: logf, args: []string{
		"--kubeconfig=" + kubeletConf, "--config=" + kubeletConfig,
		"--hostname-override=" + c.Name, "--node-ip=" + c.NodeIP(),
	}}
	kubelet.start(ctx)
	logf("kubelet started as Node %s at %s", c.Name, c.NodeIP())
	<-ctx.Done()
	logf("stopping")
	kubelet.stop()
	containerd.stop()
	return nil
}

// joinCgroup moves this process into rel in every cgroup hierarchy (making it).
func joinCgroup(rel string) error {
	pid := []byte(strconv.Itoa(os.Getpid()))
	for _, h := range cgroupHierarchies() {
		d := filepath.Join(h, rel)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", d, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if v, err := os.ReadFile(filepath.Join(filepath.Dir(d), f)); err == nil {
				if cur, _ := os.ReadFile(filepath.Join(d, f)); len(cur) <= 1 {
					_ = os.WriteFile(filepath.Join(d, f), v, 0o644)
				}
			}
		}
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), pid, 0o644); err != nil {
			return fmt.Errorf("cgroup %s: %w", d, err)
		}
	}
	return nil
}
