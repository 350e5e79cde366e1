package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/openhcp/kamaji/cmd/internal/local/worker"
)

// The admin cluster's node: the process node (package node, the default) or a real kubelet
// with containerd (--node kubelet), the same node a worker is (package worker), in the host's
// network namespace with its pods on the plane's bridge.
const (
	NodeProcess = "process"
	NodeKubelet = "kubelet"
	// adminNodeCgroup is the kubelet's cgroup root; the node's runtime (containerd, its shims)
	// runs in <root>/runtime.
	adminNodeCgroup = "kamaji-admin-node"
	// adminRegistryAddr serves the node's images on the host's loopback (a worker's registry
	// listens on its own namespace's loopback, port 5000).
	adminRegistryAddr = "127.0.0.1:5100"
	// adminPodRangeStart leaves 10.244.0.0/24 to the plane's own addresses (the gateway).
	adminPodRangeStart = "10.244.1.1"
)

// adminNodeFiles is the node's configuration, written by the plane for `kamaji local admin-node`.
type adminNodeFiles struct {
	Config worker.Config `json:"config"`
	Admin  worker.Admin  `json:"admin"`
}

func (p *Plane) adminNodeConfig() worker.Config {
	c := worker.Config{
		Name:          p.cfg.NodeName,
		Dir:           p.cfg.path("admin-node"),
		Kubelet:       p.cfg.KubeBin("kubelet"),
		ContainerdBin: filepath.Join(p.cfg.Cache, "containerd", ContainerdVersion, "bin"),
		CNIBin:        filepath.Join(p.cfg.Cache, "cni", CNIPluginsVersion, "bin"),
		RegistryDir:   p.cfg.path("registry"),
		HostNetwork:   true,
		Address:       p.cfg.Gateway,
		CgroupName:    adminNodeCgroup,
		Registry:      adminRegistryAddr,
	}
	c.Defaults()
	return c
}

// stageAdminNode starts the admin cluster's kubelet node (or finds it running) and waits until
// its Node is Ready.
func (p *Plane) stageAdminNode(ctx context.Context) (string, error) {
	c := p.adminNodeConfig()
	pause := filepath.Join(p.cfg.BinDir, "kamaji-pause")
	for _, b := range []string{c.Kubelet, filepath.Join(c.ContainerdBin, "containerd"), filepath.Join(c.ContainerdBin, "containerd-shim-runc-v2"),
		filepath.Join(c.CNIBin, "bridge"), filepath.Join(c.CNIBin, "host-local"), filepath.Join(c.CNIBin, "loopback"), p.cfg.corednsBin(), pause} {
		if !fileExists(b) {
			return "", fmt.Errorf("%s is missing: `make up NODE=kubelet` builds it (hack/node-bins.sh, cmd/pause)", b)
		}
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return "", fmt.Errorf("runc is missing: `make up NODE=kubelet` installs it (hack/node-bins.sh runc)")
	}
	images, err := p.adminImages(pause)
	if err != nil {
		return "", err
	}
	if _, err := worker.BuildImages(c.RegistryDir, images); err != nil {
		return "", err
	}
	if err := c.Setup(); err != nil {
		return "", err
	}
	kubeconfig, err := p.nodeKubeconfig()
	if err != nil {
		return "", err
	}
	files := adminNodeFiles{Config: c, Admin: worker.Admin{
		Kubeconfig:    kubeconfig,
		KubeletConfig: c.AdminKubeletConfig(p.pkiFile("ca.crt"), p.cfg.DNSServiceIP(), 10248),
		Bridge:        p.cfg.Bridge, PodCIDR: p.cfg.PodCIDR, RangeStart: adminPodRangeStart, Gateway: p.cfg.Gateway,
		Cache: p.cfg.Cache, KubeBins: kubeBinsScript(p.cfg.StateDir, p.cfg.BinDir),
	}}
	data, err := json.MarshalIndent(files, "", "  ")
	if err != nil {
		return "", err
	}
	conf := p.cfg.path("admin-node.json")
	if err := os.WriteFile(conf, data, 0o644); err != nil {
		return "", err
	}
	comp := component{
		name:         "node",
		bin:          p.cfg.SelfExe,
		args:         []string{"local", "admin-node", "--config", conf},
		unshareMount: true,
		ready:        func(ctx context.Context) error { return nodeReady(ctx, p.cs, c.Name) },
		timeout:      2 * time.Minute,
	}
	running, err := p.ensure(ctx, comp)
	if err != nil {
		return "", err
	}
	state := "kubelet and containerd"
	if running {
		state = "already running"
	}
	return fmt.Sprintf("%s, Node %s Ready at %s, logs %s", state, c.Name, c.NodeIP(), filepath.Join(c.Dir, "logs")), nil
}

// nodeKubeconfig writes the kubelet's kubeconfig: a client certificate of the admin CA for
// system:node:<name> in system:nodes, as kubeadm's would be after the TLS bootstrap.
func (p *Plane) nodeKubeconfig() (string, error) {
	kp, err := loadOrCreate(p.cfg.path("pki"), "node-kubelet", clientCert(p.pki.CA, "system:node:"+p.cfg.NodeName, "system:nodes"))
	if err != nil {
		return "", err
	}
	key, err := kp.KeyPEM()
	if err != nil {
		return "", err
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: p.cfg.APIServerURL(), CertificateAuthorityData: p.pki.CA.CertPEM()}
	kc.AuthInfos["node"] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM(), ClientKeyData: key}
	kc.Contexts["node@local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "node"}
	kc.CurrentContext = "node@local"
	path := p.cfg.path("pki", "kubelet.conf")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return "", err
	}
	return path, os.Chmod(path, 0o600)
}

// adminImages are the images the admin node's pods run, built from this machine's binaries:
// the pod sandbox, CoreDNS (the cluster's DNS), the tenant control plane of the plane's
// Kubernetes version (the node's registry makes another version's on its first pull,
// worker.ControlPlaneSource), konnectivity's server and kine when built, and the project's own
// images (kamaji and its plugins, from the bin folder) under every tag.
func (p *Plane) adminImages(pause string) ([]worker.Image, error) {
	out := []worker.Image{worker.PauseImage(pause), worker.CoreDNSImage(p.cfg.corednsBin(), CoreDNSVersion)}
	// The plane's own version now, for the first tenants; any other on its first pull.
	cp, err := worker.ControlPlaneImages(filepath.Dir(p.cfg.KubeBin("kube-apiserver")), KubeVersion)
	if err != nil {
		return nil, err
	}
	out = append(out, cp...)
	type program struct{ ref, host, in, user string }
	// The project's images run as nonroot, as `make images` builds them.
	const nonroot = "65532:65532"
	extra := []program{
		{"registry.k8s.io/kas-network-proxy/proxy-server:" + KonnectivityVersion, filepath.Join(p.cfg.Cache, "konnectivity", KonnectivityVersion, "bin", "proxy-server"), "proxy-server", ""},
		{KineImage, filepath.Join(p.cfg.Cache, "kine", KineVersion, "bin", "kine"), "bin/kine", ""},
		{ManagerImageRepository + ":" + worker.AnyTag, filepath.Join(p.cfg.BinDir, "kamaji"), "usr/local/bin/kamaji", nonroot},
	}
	for _, name := range bundledPlugins {
		extra = append(extra, program{PluginImageRegistry + "/kamaji-" + name + ":" + worker.AnyTag,
			filepath.Join(p.cfg.BinDir, "kamaji-"+name), "usr/local/bin/kamaji-" + name, nonroot})
	}
	for _, e := range extra {
		if !fileExists(e.host) {
			continue // not built: its pods fail with ErrImagePull, naming the image
		}
		img, err := worker.ProgramImage(e.ref, map[string]string{e.in: e.host}, []string{"/" + e.in}, e.user)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// Image references of the chart's defaults (charts/kamaji/values.yaml: image.repository and
// bundledPluginsRegistry).
const (
	ManagerImageRepository = "ghcr.io/openhcp/kamaji"
	PluginImageRegistry    = "ghcr.io/openhcp"
)

// adminDNSManifest is the admin cluster's DNS: CoreDNS as kubeadm deploys it, at the Service
// address the kubelet gives pods.
func (p *Plane) adminDNSManifest() string {
	return fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects:
- {kind: ServiceAccount, name: coredns, namespace: kube-system}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  Corefile: |
    .:53 {
        errors
        health {
            lameduck 5s
        }
        ready
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
            ttl 30
        }
        forward . /etc/resolv.conf
        cache 30
        reload
        loadbalance
    }
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  replicas: 1
  selector:
    matchLabels: {k8s-app: kube-dns}
  template:
    metadata:
      labels: {k8s-app: kube-dns}
    spec:
      serviceAccountName: coredns
      priorityClassName: system-cluster-critical
      dnsPolicy: Default
      containers:
      - name: coredns
        image: registry.k8s.io/coredns/coredns:%[1]s
        args: ["-conf", "/etc/coredns/Corefile"]
        ports:
        - {name: dns, containerPort: 53, protocol: UDP}
        - {name: dns-tcp, containerPort: 53, protocol: TCP}
        readinessProbe:
          httpGet: {path: /ready, port: 8181}
          periodSeconds: 2
        livenessProbe:
          httpGet: {path: /health, port: 8080}
          initialDelaySeconds: 60
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities:
            add: [NET_BIND_SERVICE]
            drop: [ALL]
        volumeMounts:
        - {name: config, mountPath: /etc/coredns, readOnly: true}
      volumes:
      - name: config
        configMap:
          name: coredns
          items: [{key: Corefile, path: Corefile}]
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  selector: {k8s-app: kube-dns}
  clusterIP: %[2]s
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
`, CoreDNSVersion, p.cfg.DNSServiceIP())
}

// stageAdminDNS deploys the admin cluster's CoreDNS and waits until it answers.
func (p *Plane) stageAdminDNS(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, p.cfg.Kubectl(), "--kubeconfig", p.cfg.AdminKubeconfig(), "apply", "--server-side",
		"--field-manager=kamaji-local", "--force-conflicts", "-f", "-")
	cmd.Stdin = strings.NewReader(p.adminDNSManifest())
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("kubectl apply (CoreDNS): %v: %s", err, strings.TrimSpace(string(out)))
	}
	addr := net.JoinHostPort(p.cfg.DNSServiceIP(), "53")
	if err := pollReady(ctx, 2*time.Minute, nil, func(ctx context.Context) error {
		return dnsAnswers(ctx, addr, "kubernetes.default.svc.cluster.local")
	}); err != nil {
		return "", fmt.Errorf("the admin cluster's CoreDNS does not answer at %s: %w (kubectl -n kube-system describe pod -l k8s-app=kube-dns)", addr, err)
	}
	return "CoreDNS " + CoreDNSVersion + " at " + addr, nil
}

// dnsAnswers resolves name through the DNS server at addr.
func dnsAnswers(ctx context.Context, addr, name string) error {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := r.LookupHost(ctx, name)
	return err
}

// downAdminNode removes what the kubelet node left once its supervisor is stopped: the
// containers and shims (its cgroups), the cgroups, and the host paths it had to make.
func (p *Plane) downAdminNode() []error {
	c := p.adminNodeConfig()
	if !fileExists(c.Dir) {
		return nil // a process node's plane (Setup makes the folder first)
	}
	var errs []error
	if err := c.Teardown(); err != nil {
		errs = append(errs, err)
	}
	if err := worker.RemoveHostPaths(p.cfg.StateDir); err != nil {
		errs = append(errs, err)
	}
	// The kubelet's own chains in the host's tables (its canaries, the hint of which iptables
	// backend it used): made by the node, gone with it.
	for _, ipt := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"mangle", "nat", "filter"} {
			for _, chain := range []string{"KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT"} {
				if exec.Command(ipt, "-t", table, "-F", chain).Run() == nil {
					_ = exec.Command(ipt, "-t", table, "-X", chain).Run()
				}
			}
		}
	}
	return errs
}

// RunAdminNode runs the kubelet node described by the file local up wrote.
func RunAdminNode(ctx context.Context, path string, log io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var f adminNodeFiles
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return worker.RunAdmin(ctx, f.Config, f.Admin, log)
}
