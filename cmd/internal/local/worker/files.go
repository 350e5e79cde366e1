package worker

import (
	"encoding/json"
	"fmt"
	"strings"
)

// ContainerdConfig is containerd's configuration (version 4, containerd 2.x). Its sockets and
// runc's state sit in /run/containerd, the worker's own folder in its mount namespace; images
// come through the worker's registry (hosts in certsDir).
func (c Config) ContainerdConfig() string {
	return fmt.Sprintf(`version = 4
root = %[1]q
state = "/run/containerd"
# NRI would listen on the host-wide /var/run/nri/nri.sock; nothing here uses it.
disabled_plugins = ["io.containerd.nri.v1.nri"]
imports = []

[plugins."io.containerd.internal.v1.opt"]
  path = %[2]q

[plugins."io.containerd.server.v1.grpc"]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.server.v1.ttrpc"]
  address = "/run/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.server.v1.debug"]
  address = "/run/containerd/debug.sock"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = %[3]q
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = %[4]q

[plugins."io.containerd.cri.v1.runtime"]
  netns_mounts_under_state_dir = true
  # The machines this runs on lack CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below
  # containerd's own, which the sandbox asks for.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [%[5]q]
    conf_dir = %[6]q
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
    SystemdCgroup = false
`, c.path("containerd"), c.path("opt"), SandboxImage, c.path("certs.d"), c.CNIBin, c.path("cni"))
}

// RegistryHosts is the hosts.toml of every registry (certs.d/_default): the worker's own
// registry and nothing else, so an image built here is pulled from it and any other fails at
// once with "not found" (ErrImagePull), instead of hanging on a registry this machine cannot
// reach.
func RegistryHosts(addr string) string {
	return fmt.Sprintf(`server = "http://%[1]s"

[host."http://%[1]s"]
  capabilities = ["pull", "resolve"]
`, addr)
}

// CNIConfig is the pod network of the node: a bridge in the worker's namespace with the Node's
// pod range, pods' traffic to anything outside it masqueraded to the node's address.
func (c Config) CNIConfig(podCIDR string) string {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "kamaji-worker",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": podCIDR}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": "/var/lib/cni/networks",
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	data, _ := json.MarshalIndent(conf, "", "  ")
	return string(data) + "\n"
}

// KubeletPatch is the kubeadm patch (kubeletconfiguration+merge.yaml) that fits the kubelet
// the tenant configures to this machine: a cgroup v1 host without systemd, a cgroup root of
// the worker's own, no swap check.
func (c Config) KubeletPatch() string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: %s
failSwapOn: false
`, c.Cgroup())
}

// Join is a parsed `kubeadm join` line.
type Join struct {
	Endpoint, Token string
	CACertHashes    []string
}

// ParseJoin reads the line `kubeadm token create --print-join-command` prints.
func ParseJoin(line string) (Join, error) {
	f := strings.Fields(line)
	if len(f) < 3 || f[0] != "kubeadm" || f[1] != "join" {
		return Join{}, fmt.Errorf("not a kubeadm join line: %q", line)
	}
	j := Join{Endpoint: f[2]}
	for i := 3; i < len(f); i++ {
		next := func() string {
			if i+1 < len(f) {
				i++
				return f[i]
			}
			return ""
		}
		switch f[i] {
		case "--token":
			j.Token = next()
		case "--discovery-token-ca-cert-hash":
			j.CACertHashes = append(j.CACertHashes, next())
		}
	}
	if j.Token == "" || len(j.CACertHashes) == 0 {
		return Join{}, fmt.Errorf("kubeadm join line without --token or --discovery-token-ca-cert-hash: %q", line)
	}
	return j, nil
}

// JoinConfiguration is kubeadm's join configuration for this worker: token discovery as the
// join line says, the node's name and address, containerd's socket, the kubelet patch, and the
// preflight checks ignored (they assume a whole machine: swap, ports, systemd, cgroup v2...).
func (c Config) JoinConfiguration(j Join) string {
	hashes := make([]string, len(j.CACertHashes))
	for i, h := range j.CACertHashes {
		hashes[i] = fmt.Sprintf("%q", h)
	}
	return fmt.Sprintf(`apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: %q
    token: %q
    caCertHashes: [%s]
nodeRegistration:
  name: %q
  criSocket: unix:///run/containerd/containerd.sock
  ignorePreflightErrors: [all]
  kubeletExtraArgs:
  - name: node-ip
    value: %q
patches:
  directory: %q
`, j.Endpoint, j.Token, strings.Join(hashes, ", "), c.Name, c.NodeIP(), c.path("patches"))
}

// KubeletArgs is the kubelet's command line as kubeadm's systemd drop-in builds it: the
// bootstrap and final kubeconfigs, the configuration kubeadm wrote, and the flags of
// kubeadm-flags.env (KUBELET_KUBEADM_ARGS).
func KubeletArgs(flagsEnv string) []string {
	args := []string{
		"--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
		"--kubeconfig=/etc/kubernetes/kubelet.conf",
		"--config=/var/lib/kubelet/config.yaml",
	}
	for _, l := range strings.Split(flagsEnv, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(l), "KUBELET_KUBEADM_ARGS=")
		if !ok {
			continue
		}
		args = append(args, strings.Fields(strings.Trim(v, `"`))...)
	}
	return args
}
