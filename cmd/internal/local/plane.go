package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openhcp/kamaji/cmd/internal/local/node"
	"github.com/openhcp/kamaji/core/manager"
)

// ActiveFile names the state folder of the plane running on this machine (one per machine:
// the bridge, the ports and kube-proxy's chains are the host's).
const ActiveFile = "/run/kamaji-local.state"

// Plane is a local plane being brought up or down.
type Plane struct {
	cfg  Config
	pki  *adminPKI
	rest *rest.Config
	cs   kubernetes.Interface
	cl   client.Client
}

type stage struct {
	name string
	run  func(ctx context.Context) (string, error)
}

// Up brings the plane up, or completes it: every stage skips what already runs.
func Up(ctx context.Context, cfg Config) error {
	if err := cfg.normalize(); err != nil {
		return err
	}
	p := &Plane{cfg: cfg}
	out := cfg.Out
	fmt.Fprintf(out, "kamaji local up: state in %s\n", cfg.StateDir)
	total := time.Now()
	stages := []stage{
		{"host", p.stageHost},
		{"network", func(context.Context) (string, error) { return p.ensureNetwork() }},
		{"certificates", p.stagePKI},
		{"etcd (admin)", p.component(p.adminEtcd)},
		{"kube-apiserver", p.component(p.apiServer)},
		{"kube-controller-manager", p.component(p.controllerManager)},
		{"kube-scheduler", p.component(p.scheduler)},
		{"process node", p.stageNode},
		{"kube-proxy", p.stageProxy},
		{"datastore etcd", p.stageDataStoreEtcd},
	}
	if cfg.Node == NodeKubelet {
		stages[7] = stage{"kubelet node", p.stageAdminNode}
		stages = slices.Insert(stages, 9, stage{"cluster DNS", p.stageAdminDNS})
	}
	etcd2, etcd2DataStore := p.etcd2Stages()
	stages = append(stages, etcd2...)
	stages = append(stages, p.kineBackendStages()...) // kine.go: MariaDB, PostgreSQL, NATS
	stages = append(stages, stage{"kamaji manager", p.stageManager}, stage{"DataStore default", p.stageDataStore})
	stages = append(stages, etcd2DataStore...)
	stages = append(stages, p.kineDataStoreStages()...)
	for i := range cfg.Tenants {
		name := TenantName(i)
		stages = append(stages, stage{"TenantControlPlane " + name, func(ctx context.Context) (string, error) { return p.stageTenant(ctx, name) }})
	}
	stages = append(stages, p.workerStages()...)
	for _, s := range stages {
		start := time.Now()
		fmt.Fprintf(out, "  %-32s ", s.name)
		detail, err := s.run(ctx)
		if err != nil {
			fmt.Fprintf(out, "FAILED after %.1fs\n", time.Since(start).Seconds())
			var se *StageError
			if errors.As(err, &se) && se.Log != "" {
				fmt.Fprintf(out, "\n--- last lines of %s (%s):\n%s\n---\n", se.Component, se.Log, Tail(se.Log, 25))
			}
			return err
		}
		fmt.Fprintf(out, "ok %6.1fs  %s\n", time.Since(start).Seconds(), detail)
	}
	fmt.Fprintf(out, "ready in %.1fs\n", time.Since(total).Seconds())
	if cfg.Tenants > 0 {
		fmt.Fprintf(out, "\nThe tenant cluster %s answers:\n\n  %s\n\n", TenantName(0), p.KubectlLine(TenantName(0)))
	}
	fmt.Fprintf(out, "The admin cluster: %s --kubeconfig %s get tcp,pods -A\n", cfg.Kubectl(), cfg.AdminKubeconfig())
	if _, err := os.Stat(filepath.Join(cfg.BinDir, "kubectl-kamaji")); err == nil {
		// kubectl finds plugins on PATH, and refuses flags before a plugin's name.
		fmt.Fprintf(out, "Its tenants, with the kubectl plugin: PATH=%s:$PATH %s kamaji list -A --kubeconfig %s\n",
			cfg.BinDir, cfg.Kubectl(), cfg.AdminKubeconfig())
	}
	fmt.Fprintf(out, "Stop and remove everything: make down (kamaji local down --state-dir %s)\n", cfg.StateDir)
	return nil
}

// KubectlLine is the command printed for a tenant.
func (p *Plane) KubectlLine(tcp string) string {
	return p.cfg.Kubectl() + " --kubeconfig " + p.cfg.TenantKubeconfig(tcp) + " get ns"
}

func (p *Plane) component(mk func() component) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		c := mk()
		running, err := p.ensure(ctx, c)
		if err != nil {
			return "", err
		}
		if running {
			return "already running", nil
		}
		return "log " + p.logPath(c.name), nil
	}
}

func (p *Plane) stageHost(ctx context.Context) (string, error) {
	if os.Geteuid() != 0 {
		return "", errors.New("the local plane needs root (network namespaces, bridges, mounts, iptables)")
	}
	if data, err := os.ReadFile(ActiveFile); err == nil {
		if other := strings.TrimSpace(string(data)); other != p.cfg.StateDir && other != "" {
			if _, err := os.Stat(other); err == nil {
				return "", fmt.Errorf("another local plane runs on this machine (state in %s): stop it first with `kamaji local down --state-dir %s`", other, other)
			}
		}
	}
	var installed []string
	missing := map[string]string{}
	for bin, pkg := range map[string]string{"ip": "iproute2", "iptables": "iptables", "nft": "nftables", "conntrack": "conntrack"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing[bin] = pkg
		}
	}
	if len(missing) > 0 {
		var pkgs []string
		for _, pkg := range missing {
			pkgs = append(pkgs, pkg)
		}
		if err := aptInstall(ctx, pkgs...); err != nil {
			return "", err
		}
		installed = pkgs
	}
	for _, bin := range []string{p.cfg.EtcdBin(), p.cfg.KubeBin("kube-apiserver"), p.cfg.KubeBin("kube-controller-manager"),
		p.cfg.KubeBin("kube-scheduler"), p.cfg.KubeBin("kube-proxy"), p.cfg.KubeBin("kubectl"), p.pluginPath()} {
		if !fileExists(bin) {
			return "", fmt.Errorf("%s is missing: run `make up` (it builds hack/kube-bins.sh and `make build` first)", bin)
		}
	}
	if err := os.MkdirAll(p.cfg.StateDir, 0o755); err != nil {
		return "", err
	}
	// What a down that failed half-way left: this plane's node stops gracefully.
	if err := os.Remove(filepath.Join(p.cfg.StateDir, node.TeardownFile)); err != nil && !os.IsNotExist(err) {
		return "", err
	}
	if err := os.WriteFile(ActiveFile, []byte(p.cfg.StateDir), 0o644); err != nil {
		return "", err
	}
	if len(installed) > 0 {
		return "installed " + strings.Join(installed, " "), nil
	}
	return "root, tools and binaries present", nil
}

func aptInstall(ctx context.Context, pkgs ...string) error {
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get %s: %v\n%s", strings.Join(args, " "), err, Tail2(string(out), 10))
		}
		return nil
	}
	if err := run(append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)...); err != nil {
		if err := run("update"); err != nil {
			return err
		}
		return run(append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)...)
	}
	return nil
}

// Tail2 is the end of a text.
func Tail2(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func (p *Plane) stagePKI(context.Context) (string, error) {
	if err := p.ensurePKI(); err != nil {
		return "", err
	}
	var err error
	if p.cs, err = kubernetes.NewForConfig(p.rest); err != nil {
		return "", err
	}
	if p.cl, err = client.New(p.rest, client.Options{Scheme: manager.Scheme()}); err != nil {
		return "", err
	}
	if !fileExists(p.cfg.path("images.yaml")) {
		if err := os.WriteFile(p.cfg.path("images.yaml"), []byte(node.DefaultImages), 0o644); err != nil {
			return "", err
		}
	}
	return "admin kubeconfig " + p.cfg.AdminKubeconfig(), nil
}

func (p *Plane) stageNode(ctx context.Context) (string, error) {
	return p.component(p.processNode)(ctx)
}

func (p *Plane) stageProxy(ctx context.Context) (string, error) {
	if err := p.kubeProxyConfig(); err != nil {
		return "", err
	}
	return p.component(p.kubeProxy)(ctx)
}

// Down stops every process of the plane and removes its traces from the host, then its state.
func Down(ctx context.Context, cfg Config) error {
	if err := cfg.normalize(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("the local plane needs root")
	}
	p := &Plane{cfg: cfg}
	out := cfg.Out
	// The host's rules and bridge belong to the running plane: never tear them down on behalf
	// of another state folder.
	active := ""
	if data, err := os.ReadFile(ActiveFile); err == nil {
		if a := strings.TrimSpace(string(data)); fileExists(a) {
			active = a
		}
	}
	if active != "" && active != cfg.StateDir {
		return fmt.Errorf("the local plane running here has its state in %s, not %s: use --state-dir %s", active, cfg.StateDir, active)
	}
	if active == "" && !fileExists(cfg.StateDir) {
		fmt.Fprintf(out, "kamaji local down: no local plane in %s, nothing to do\n", cfg.StateDir)
		return nil
	}
	fmt.Fprintf(out, "kamaji local down: state in %s\n", cfg.StateDir)
	start := time.Now()
	// The node then stops its pods within node.TeardownGrace rather than with their grace
	// periods (the state goes with them); a failed down leaves the file, which the next up
	// removes.
	if fileExists(cfg.StateDir) {
		_ = os.WriteFile(filepath.Join(cfg.StateDir, node.TeardownFile), nil, 0o644)
	}
	kineTenants := p.kineDownPrepare(ctx) // kine.go: before the admin apiserver stops
	// The manager first: its watches inside the tenants would hold each tenant apiserver to
	// its grace period. Then the node: it stops the pods' containers, each within
	// node.TeardownGrace (the file above).
	order := []struct {
		name  string
		grace time.Duration
	}{
		{"kamaji-manager", 10 * time.Second}, {"node", 30 * time.Second}, {"kube-proxy", 5 * time.Second},
		{"kube-scheduler", 5 * time.Second}, {"kube-controller-manager", 5 * time.Second},
		{"kube-apiserver", 15 * time.Second}, {"datastore-etcd", 10 * time.Second}, {etcd2Component, 10 * time.Second}, {"etcd", 10 * time.Second},
	}
	// The workers first: nothing of theirs needs the admin cluster to stop.
	stopped, errs := p.downWorkers()
	for _, c := range order {
		if p.stop(c.name, c.grace) {
			stopped = append(stopped, c.name)
		}
	}
	// Anything else with the plane's marker (containers of a node that was killed, plugins).
	stray := node.MarkedProcesses(cfg.StateDir, false)
	for _, pid := range stray {
		stopPID(pid, 5*time.Second, p.ours)
	}
	if len(stopped) > 0 {
		fmt.Fprintf(out, "  stopped %s\n", strings.Join(stopped, ", "))
	}
	if len(stray) > 0 {
		fmt.Fprintf(out, "  stopped %d more processes of the plane\n", len(stray))
	}
	errs = append(errs, p.downAdminNode()...) // a kubelet node's containers, cgroups and host paths
	errs = append(errs, p.cleanupHost()...)
	errs = append(errs, p.kineDown(ctx, kineTenants)...)
	if err := os.RemoveAll(cfg.StateDir); err != nil {
		errs = append(errs, err)
	}
	if data, err := os.ReadFile(ActiveFile); err == nil && strings.TrimSpace(string(data)) == cfg.StateDir {
		_ = os.Remove(ActiveFile)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(out, "  removed network namespaces, links, rules and %s (%.1fs)\n", cfg.StateDir, time.Since(start).Seconds())
	return nil
}
