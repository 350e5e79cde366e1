package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"

	"github.com/openhcp/kamaji/cmd/internal/local/worker"
)

// Versions of what a worker runs besides the Kubernetes binaries; keep in step with
// hack/node-bins.sh.
const (
	ContainerdVersion = "v2.4.2"
	CNIPluginsVersion = "v1.10.0"
	// CoreDNSVersion is the coredns addon's image tag for the plane's Kubernetes minor.
	CoreDNSVersion = "v1.14.6"
	// KonnectivityVersion is the konnectivity addon's default (hack/kube-bins.sh builds it).
	KonnectivityVersion = "v0.34.0"
)

// MaxWorkers bounds worker indexes: each worker takes 10.246.<index>.0/30.
const MaxWorkers = 200

// WorkerName is the i-th worker's Node name, also the name of its process in the plane.
func WorkerName(i int) string { return "worker-" + strconv.Itoa(i) }

// workerConfig is the i-th worker of the plane, with kubeadm and the kubelet of version.
func (p *Plane) workerConfig(i int, version string) worker.Config {
	bin := filepath.Join(p.cfg.Cache, "kube", version, "bin")
	c := worker.Config{
		Index:         i,
		Name:          WorkerName(i),
		Dir:           p.cfg.path("workers", WorkerName(i)),
		Kubeadm:       filepath.Join(bin, "kubeadm"),
		Kubelet:       filepath.Join(bin, "kubelet"),
		ContainerdBin: filepath.Join(p.cfg.Cache, "containerd", ContainerdVersion, "bin"),
		CNIBin:        filepath.Join(p.cfg.Cache, "cni", CNIPluginsVersion, "bin"),
		RegistryDir:   p.cfg.path("registry"),
		// The admin cluster's pods (the tenant apiserver among them) reach a node only through
		// its konnectivity agent, as when nodes sit in another network.
		BlockedFrom: p.cfg.PodCIDR,
	}
	c.Defaults()
	return c
}

// workerStages are the workers of the first sample tenant, after it is Ready.
func (p *Plane) workerStages() []stage {
	if p.cfg.Tenants == 0 {
		return nil
	}
	var out []stage
	for i := range p.cfg.Workers {
		out = append(out, stage{"worker node " + WorkerName(i), func(ctx context.Context) (string, error) { return p.stageWorker(ctx, i) }})
	}
	return out
}

// WorkerBuildsLock is the file hack/up-bins.sh holds locked while it builds what a worker runs
// (kubeadm, the kubelet, containerd, the CNI plugins, CoreDNS), beside the plane's start.
func WorkerBuildsLock(cache string) string { return filepath.Join(cache, "logs", "up-worker.lock") }

// waitWorkerBuilds returns once no build of a worker's binaries runs (at once when none does).
func waitWorkerBuilds(ctx context.Context, cache string) error {
	f, err := os.OpenFile(WorkerBuildsLock(cache), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	done := make(chan error, 1)
	go func() { done <- syscall.Flock(int(f.Fd()), syscall.LOCK_SH) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// busybox is Debian's static busybox, the test image's shell.
const busybox = "/bin/busybox"

// stageWorker starts the i-th worker of the first sample tenant (or finds it running) and
// waits until its Node is Ready.
func (p *Plane) stageWorker(ctx context.Context, i int) (string, error) {
	return p.ensureWorker(ctx, i, "default", TenantName(0))
}

// AddWorker joins the i-th worker of the plane to a tenant of the namespace (the Node named
// worker-<i>), with the kubelet and kubeadm of the tenant's version, and waits until it is Ready.
func AddWorker(ctx context.Context, cfg Config, i int, namespace, tenant string) (string, error) {
	if i < 0 || i >= MaxWorkers {
		return "", fmt.Errorf("--index must be between 0 and %d (each worker takes a /30 of 10.246.0.0/16)", MaxWorkers-1)
	}
	p, err := runningPlane(cfg)
	if err != nil {
		return "", err
	}
	return p.ensureWorker(ctx, i, namespace, tenant)
}

// ensureWorker starts the i-th worker for a tenant (or finds it running) and waits until its
// Node is Ready.
func (p *Plane) ensureWorker(ctx context.Context, i int, namespace, tenant string) (string, error) {
	tcp := &kamajiv1alpha1.TenantControlPlane{}
	if err := p.cl.Get(ctx, client.ObjectKey{Namespace: namespace, Name: tenant}, tcp); err != nil {
		return "", fmt.Errorf("TenantControlPlane %s/%s: %w", namespace, tenant, err)
	}
	if err := p.workerNetworkFits(tcp); err != nil {
		return "", err
	}
	version := tcp.Spec.Kubernetes.Version
	w := p.workerConfig(i, version)
	// One tenant per worker: its folder says which.
	owner := filepath.Join(w.Dir, "tenant")
	if data, err := os.ReadFile(owner); err == nil && strings.TrimSpace(string(data)) != namespace+"/"+tenant {
		return "", fmt.Errorf("%s already joins %s: pick another --index", w.Name, strings.TrimSpace(string(data)))
	}
	if err := waitWorkerBuilds(ctx, p.cfg.Cache); err != nil {
		return "", err
	}
	pause := filepath.Join(p.cfg.BinDir, "kamaji-pause")
	for _, b := range []string{w.Kubeadm, w.Kubelet} {
		if !fileExists(b) {
			return "", fmt.Errorf("%s is missing: build it with `hack/kube-bins.sh kubeadm@%s` and `K8S_VERSION=%s hack/node-bins.sh kubelet`", b, version, version)
		}
	}
	for _, b := range []string{p.cfg.corednsBin(), p.cfg.konnectivityAgentBin(), filepath.Join(w.ContainerdBin, "containerd"), filepath.Join(w.ContainerdBin, "containerd-shim-runc-v2"),
		filepath.Join(w.CNIBin, "bridge"), filepath.Join(w.CNIBin, "host-local"), filepath.Join(w.CNIBin, "loopback"), filepath.Join(w.CNIBin, "portmap"), pause} {
		if !fileExists(b) {
			return "", fmt.Errorf("%s is missing: `make up` builds it (hack/kube-bins.sh kubeadm konnectivity, hack/node-bins.sh, cmd/pause; its log: %s), or run up with --workers 0", b, filepath.Join(p.cfg.Cache, "logs", "up-worker.log"))
		}
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return "", errors.New("runc is missing: `make up` installs it (hack/node-bins.sh runc), or run up with --workers 0")
	}
	if !fileExists(busybox) {
		if err := aptInstall(ctx, "busybox-static"); err != nil {
			return "", err
		}
	}
	images, err := p.workerImages(pause)
	if err != nil {
		return "", err
	}
	if _, err := worker.BuildImages(w.RegistryDir, images); err != nil {
		return "", err
	}
	if err := w.Setup(); err != nil {
		return "", err
	}
	if err := os.WriteFile(owner, []byte(namespace+"/"+tenant+"\n"), 0o644); err != nil {
		return "", err
	}
	joinFile := filepath.Join(w.Dir, "join-command")
	if !w.Joined() && p.runningPID(WorkerName(i)) == 0 {
		kubeconfig := filepath.Join(w.Dir, "tenant.kubeconfig")
		if err := p.WriteTenantKubeconfig(ctx, namespace, tenant, kubeconfig); err != nil {
			return "", err
		}
		// A fresh bootstrap token for each join; it stays out of logs and command lines.
		out, err := exec.CommandContext(ctx, w.Kubeadm, "token", "create", "--print-join-command", "--ttl", "1h",
			"--kubeconfig", kubeconfig).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("kubeadm token create in %s: %v: %s", tenant, err, strings.TrimSpace(string(out)))
		}
		if err := os.WriteFile(joinFile, out, 0o600); err != nil {
			return "", err
		}
	}
	rc, err := p.tenantRESTConfigIn(ctx, namespace, tenant)
	if err != nil {
		return "", err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return "", err
	}
	c := component{
		name: WorkerName(i),
		bin:  "nsenter",
		args: []string{"--net=/run/netns/" + w.NetNS(), "--", p.cfg.SelfExe, "local", "worker",
			"--index", strconv.Itoa(i), "--name", w.Name, "--dir", w.Dir, "--join-file", joinFile,
			"--kubeadm", w.Kubeadm, "--kubelet", w.Kubelet, "--containerd-bin", w.ContainerdBin, "--cni-bin", w.CNIBin,
			"--registry-dir", w.RegistryDir},
		unshareMount: true,
		ready:        func(ctx context.Context) error { return nodeReady(ctx, cs, w.Name) },
		timeout:      4 * time.Minute,
	}
	running, err := p.ensure(ctx, c)
	if err != nil {
		var se *StageError
		if errors.As(err, &se) {
			// The worker's own log says little: name its processes' logs.
			se.Err = fmt.Errorf("%w (kubeadm join, kubelet and containerd logs in %s)", se.Err, filepath.Join(w.Dir, "logs"))
		}
		return "", err
	}
	state := "joined"
	if running {
		state = "already running"
	}
	return fmt.Sprintf("%s, Node %s Ready in %s at %s, logs %s", state, w.Name, tenant, w.NodeIP(), filepath.Join(w.Dir, "logs")), nil
}

// workerImages are the images a worker's registry serves: the pod sandbox, busybox, and the
// images of the addons the first tenant runs on its workers.
func (p *Plane) workerImages(pause string) ([]worker.Image, error) {
	bb, err := worker.BusyboxImage(busybox)
	if err != nil {
		return nil, err
	}
	kp, err := worker.KubeProxyImage(p.cfg.KubeBin("kube-proxy"), KubeVersion)
	if err != nil {
		return nil, err
	}
	return []worker.Image{worker.PauseImage(pause), bb, kp, worker.CoreDNSImage(p.cfg.corednsBin(), CoreDNSVersion),
		worker.KonnectivityAgentImage(p.cfg.konnectivityAgentBin(), KonnectivityVersion)}, nil
}

func nodeReady(ctx context.Context, cs kubernetes.Interface, name string) error {
	n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				return nil
			}
			return fmt.Errorf("node %s: Ready=%s %s: %s", name, c.Status, c.Reason, c.Message)
		}
	}
	return fmt.Errorf("node %s: no Ready condition yet", name)
}

// RemoveWorker deletes the i-th worker's Node from its tenant (best effort: the tenant may be
// gone), stops the worker and removes everything of it from the host.
func RemoveWorker(ctx context.Context, cfg Config, i int) error {
	p, err := runningPlane(cfg)
	if err != nil {
		return err
	}
	w := p.workerConfig(i, KubeVersion)
	if !fileExists(w.Dir) && p.runningPID(WorkerName(i)) == 0 {
		return fmt.Errorf("no worker %s in %s", w.Name, cfg.StateDir)
	}
	if rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(w.Dir, "tenant.kubeconfig")); err == nil {
		if cs, err := kubernetes.NewForConfig(rc); err == nil {
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_ = cs.CoreV1().Nodes().Delete(dctx, w.Name, metav1.DeleteOptions{})
			cancel()
		}
	}
	p.stop(WorkerName(i), 20*time.Second)
	if err := w.Teardown(); err != nil {
		return err
	}
	return os.RemoveAll(w.Dir)
}

// workerNetworkFits refuses a tenant whose pod range overlaps the admin cluster's pods: a
// worker routes its pods' range locally, and must reach the tenant apiserver's pod address.
func (p *Plane) workerNetworkFits(tcp *kamajiv1alpha1.TenantControlPlane) error {
	_, admin, err := net.ParseCIDR(p.cfg.PodCIDR)
	if err != nil {
		return err
	}
	cidrs := append([]string{tcp.Spec.NetworkProfile.PodCIDR}, tcp.Spec.NetworkProfile.PodCIDRs...)
	for _, c := range cidrs {
		if c == "" {
			continue
		}
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			continue
		}
		if n.Contains(admin.IP) || admin.Contains(n.IP) {
			return fmt.Errorf("TenantControlPlane %s/%s: spec.networkProfile.podCidr %s overlaps the admin cluster's pods (%s): a worker could not reach the tenant apiserver; use another range (the sample tenants use %s)",
				tcp.Namespace, tcp.Name, c, p.cfg.PodCIDR, TenantPodCIDR)
		}
	}
	return nil
}

// downWorkers stops every worker and removes what they left: processes, cgroups, namespaces,
// links, rules and the host paths made for them.
func (p *Plane) downWorkers() (stopped []string, errs []error) {
	for _, i := range worker.Workers() {
		if p.stop(WorkerName(i), 20*time.Second) {
			stopped = append(stopped, WorkerName(i))
		}
		if err := p.workerConfig(i, KubeVersion).Teardown(); err != nil {
			errs = append(errs, err)
		}
	}
	// Workers whose namespace is gone but whose supervisor is not (a half-done up).
	entries, _ := os.ReadDir(p.cfg.path("run"))
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".pid"); ok && strings.HasPrefix(name, "worker-") {
			if p.stop(name, 5*time.Second) {
				stopped = append(stopped, name)
			}
		}
	}
	if err := worker.RemoveHostPaths(p.cfg.path("workers")); err != nil {
		errs = append(errs, err)
	}
	return stopped, errs
}
