package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/sdk"
)

// The releases `kamaji local up` installs, as docs/install.md tells a platform team to.
const (
	ManagerNamespace = "kamaji-system"
	ManagerRelease   = "kamaji"
	CRDsRelease      = "kamaji-crds"
	// ManagerSelector selects the manager's pods (the chart's selector labels).
	ManagerSelector = "app.kubernetes.io/name=kamaji,app.kubernetes.io/instance=" + ManagerRelease
)

// bundledPlugins are the chart's bundledPlugins keys; the plane turns on those built into the bin
// folder, each pinned by the sha256 of the local binary (the process node runs the plugin's image
// from that binary, so the chart's recorded digests of the published images do not apply).
var bundledPlugins = []string{
	"datastore-etcd", "datastore-mysql", "datastore-postgres", "datastore-nats",
	"addon-coredns", "addon-kubeproxy", "addon-konnectivity",
}

// managerValues are the chart values of the plane's manager: the chart's defaults but for the
// plugins this plane built and a few settings fit for one small machine.
func (p *Plane) managerValues() (map[string]any, error) {
	active := map[string]bool{"datastore-etcd": true}
	for _, a := range addonPlugins {
		active[a.plugin] = true
	}
	for _, s := range p.activeKineStores() {
		active[s.plugin] = true
	}
	plugins := map[string]any{}
	for _, name := range bundledPlugins {
		bin := filepath.Join(p.cfg.BinDir, "kamaji-"+name)
		if _, err := os.Stat(bin); !active[name] || err != nil {
			if name == "datastore-etcd" || (active[name] && !strings.HasPrefix(name, "addon-")) {
				return nil, fmt.Errorf("%s: not built (make up builds it into the bin folder)", bin)
			}
			// An addon plugin not built is left out: a TCP asking for it gets the core's
			// condition naming the missing plugin.
			plugins[name] = map[string]any{"enabled": false}
			continue
		}
		sum, err := sdk.FileSHA256(bin)
		if err != nil {
			return nil, err
		}
		plugins[name] = map[string]any{"enabled": true, "sha256": sum}
	}
	return map[string]any{
		"arch":                 runtime.GOARCH,
		"defaultDatastoreName": "default",
		"bundledPlugins":       plugins,
		"config": map[string]any{
			"max-concurrent-tcp-reconciles": 4,
			// Control planes start a few at a time (docs/operations.md): one more than the
			// cores of this machine, where every control plane of the plane runs (ten at once:
			// p50 10.4-14.9 s with 3 on 2 cores, 11.6-15.6 s with 2, 19.7-24.9 s without).
			"max-starting-control-planes": startLimit(),
			"kine-image":                  KineImage,
		},
	}, nil
}

// startLimit is the plane's max-starting-control-planes: one more than the machine's cores.
func startLimit() int { return runtime.NumCPU() + 1 }

// stageManager installs the CRDs and the manager with the real helm and the repository's charts,
// as a platform team installs them: the manager runs as a pod of the process node with the
// chart's ServiceAccount (its RBAC enforced), its plugins delivered by the chart's image volumes,
// its webhooks reached through their Service. It also writes kamaji.yaml for host-side commands.
func (p *Plane) stageManager(ctx context.Context) (string, error) {
	// A plane brought up by an older kamaji ran the manager as a host process.
	p.stop("kamaji-manager", 10*time.Second)
	if err := p.writeHostConfig(); err != nil {
		return "", err
	}
	helm, err := p.helmBinary(ctx)
	if err != nil {
		return "", err
	}
	charts, err := p.chartsDir()
	if err != nil {
		return "", err
	}
	values, err := p.managerValues()
	if err != nil {
		return "", err
	}
	data, err := yaml.Marshal(values)
	if err != nil {
		return "", err
	}
	valuesPath := p.cfg.path("kamaji-values.yaml")
	if err := os.WriteFile(valuesPath, append([]byte("# The chart values `kamaji local up` installs charts/kamaji with.\n"), data...), 0o644); err != nil {
		return "", err
	}
	digest, err := chartsDigest(charts, data)
	if err != nil {
		return "", err
	}
	digestPath := p.cfg.path("charts.sha256")
	detail := fmt.Sprintf("helm releases %s and %s/%s, values %s", CRDsRelease, ManagerNamespace, ManagerRelease, valuesPath)
	if old, _ := os.ReadFile(digestPath); string(old) == digest {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if p.managerAvailable(cctx) == nil && p.webhooksEnforced(cctx) == nil {
			return detail + ", already running", nil
		}
	}
	_ = os.Remove(digestPath)
	kc := "--kubeconfig=" + p.cfg.AdminKubeconfig()
	if err := p.helm(ctx, helm, "upgrade", "--install", CRDsRelease, filepath.Join(charts, "kamaji-crds"), kc, "--wait", "--timeout=2m"); err != nil {
		return "", err
	}
	if err := p.helm(ctx, helm, "upgrade", "--install", ManagerRelease, filepath.Join(charts, "kamaji"), kc,
		"--namespace", ManagerNamespace, "--create-namespace", "--values", valuesPath); err != nil {
		return "", err
	}
	if err := pollReady(ctx, 3*time.Minute, nil, p.managerAvailable); err != nil {
		return "", p.managerError(ctx, err)
	}
	if err := pollReady(ctx, 60*time.Second, nil, p.webhooksEnforced); err != nil {
		return "", p.managerError(ctx, err)
	}
	if err := os.WriteFile(digestPath, []byte(digest), 0o644); err != nil {
		return "", err
	}
	return detail, nil
}

// helm runs one helm command; a failure carries its output.
func (p *Plane) helm(ctx context.Context, helm string, args ...string) error {
	cctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, helm, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+p.cfg.path("helm", "cache"), "HELM_CONFIG_HOME="+p.cfg.path("helm", "config"), "HELM_DATA_HOME="+p.cfg.path("helm", "data"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("helm %s: %v\n%s", strings.Join(args[:3], " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// helmBinary is Config.Helm, else the helm hack/helm.sh builds into the cache (once).
func (p *Plane) helmBinary(ctx context.Context) (string, error) {
	if p.cfg.Helm != "" {
		return p.cfg.Helm, nil
	}
	script := repoFile(filepath.Join("hack", "helm.sh"), p.cfg.StateDir, p.cfg.BinDir)
	if script == "" {
		return "", fmt.Errorf("no helm: pass --helm, or run from the repository (hack/helm.sh builds it)")
	}
	cmd := exec.CommandContext(ctx, script)
	cmd.Env = append(os.Environ(), "KAMAJI_CACHE="+p.cfg.Cache)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %v\n%s", script, err, stderr.Bytes())
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "HELM="); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("%s printed no HELM=<path>", script)
}

// chartsDir is Config.ChartsDir, else the repository's charts folder.
func (p *Plane) chartsDir() (string, error) {
	if p.cfg.ChartsDir != "" {
		return p.cfg.ChartsDir, nil
	}
	f := repoFile(filepath.Join("charts", "kamaji", "Chart.yaml"), p.cfg.StateDir, p.cfg.BinDir)
	if f == "" {
		return "", fmt.Errorf("no charts: pass --charts (the repository's charts folder)")
	}
	return filepath.Dir(filepath.Dir(f)), nil
}

// chartsDigest is the sha256 of both charts' files and the values: up reinstalls when it changes.
func chartsDigest(charts string, values []byte) (string, error) {
	h := sha256.New()
	h.Write(values)
	var files []string
	for _, c := range []string{"kamaji-crds", "kamaji"} {
		err := filepath.WalkDir(filepath.Join(charts, c), func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, path)
			}
			return err
		})
		if err != nil {
			return "", err
		}
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// managerAvailable answers nil once the manager's Deployment has rolled out and is available.
func (p *Plane) managerAvailable(ctx context.Context) error {
	d, err := p.cs.AppsV1().Deployments(ManagerNamespace).Get(ctx, ManagerRelease, metav1.GetOptions{})
	if err != nil {
		return err
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	if st.ObservedGeneration < d.Generation || st.UpdatedReplicas < want || st.AvailableReplicas < want || st.Replicas > want {
		return fmt.Errorf("deployment %s/%s: %d of %d updated, %d available, %d in all", ManagerNamespace, ManagerRelease, st.UpdatedReplicas, want, st.AvailableReplicas, st.Replicas)
	}
	return nil
}

// ManagerPod is the manager's newest running pod, for its logs and its address.
func ManagerPod(ctx context.Context, cs kubernetes.Interface) (*corev1.Pod, error) {
	pods, err := cs.CoreV1().Pods(ManagerNamespace).List(ctx, metav1.ListOptions{LabelSelector: ManagerSelector})
	if err != nil {
		return nil, err
	}
	var newest *corev1.Pod
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning {
			continue
		}
		if newest == nil || newest.CreationTimestamp.Before(&pod.CreationTimestamp) {
			newest = pod
		}
	}
	if newest == nil {
		return nil, fmt.Errorf("no running pod of %s in %s", ManagerSelector, ManagerNamespace)
	}
	return newest, nil
}

// managerLog is the log file of the manager's container (or of the newest pod that has one).
func (p *Plane) managerLog(ctx context.Context) string {
	pods, err := p.cs.CoreV1().Pods(ManagerNamespace).List(ctx, metav1.ListOptions{LabelSelector: ManagerSelector})
	if err != nil || len(pods.Items) == 0 {
		return ""
	}
	sort.Slice(pods.Items, func(i, j int) bool {
		return pods.Items[j].CreationTimestamp.Before(&pods.Items[i].CreationTimestamp)
	})
	pod := &pods.Items[0]
	for _, c := range pod.Status.InitContainerStatuses {
		if c.State.Terminated == nil || c.State.Terminated.ExitCode != 0 {
			return p.containerLog(pod, c.Name)
		}
	}
	return p.containerLog(pod, "manager")
}

// managerError is a manager stage failure with what the pods say and where the log is.
func (p *Plane) managerError(ctx context.Context, cause error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var lines []string
	if pods, err := p.cs.CoreV1().Pods(ManagerNamespace).List(cctx, metav1.ListOptions{LabelSelector: ManagerSelector}); err == nil {
		for _, pod := range pods.Items {
			for _, cs := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
				state := "running"
				switch {
				case cs.State.Waiting != nil:
					state = "waiting: " + cs.State.Waiting.Reason + " " + cs.State.Waiting.Message
				case cs.State.Terminated != nil:
					state = fmt.Sprintf("terminated: exit %d %s", cs.State.Terminated.ExitCode, cs.State.Terminated.Reason)
				}
				lines = append(lines, fmt.Sprintf("pod %s container %s: %s (ready %v, restarts %d)", pod.Name, cs.Name, state, cs.Ready, cs.RestartCount))
			}
		}
	}
	return &StageError{Component: "kamaji-manager", Log: p.managerLog(cctx), Err: fmt.Errorf("%v\n%s", cause, strings.Join(lines, "\n"))}
}

// writeHostConfig writes kamaji.yaml with the plugins as paths on this machine, for the commands
// run on the host rather than in the manager's pod (kamaji backup --config, the benches).
func (p *Plane) writeHostConfig() error {
	sum, err := sdk.FileSHA256(p.pluginPath())
	if err != nil {
		return err
	}
	kinePlugins, err := p.kinePlugins() // kine.go
	if err != nil {
		return err
	}
	addons, err := p.addonPluginEntries() // addons.go
	if err != nil {
		return err
	}
	conf := map[string]any{
		"datastore": "default",
		"plugins": append([]settings.Plugin{{
			Kind: settings.KindDataStore, Name: "etcd", Path: p.pluginPath(), SHA256: sum, Drivers: []string{"etcd"},
		}}, append(kinePlugins, addons...)...),
	}
	data, err := yaml.Marshal(conf)
	if err != nil {
		return err
	}
	data = append([]byte("# Written by `kamaji local up` for commands run on this machine (kamaji backup --config ...);\n# the manager runs in a pod with the chart's kamaji.yaml (ConfigMap kamaji-system/kamaji-config).\n"), data...)
	return os.WriteFile(p.cfg.path("kamaji.yaml"), data, 0o644)
}

// ManagerMetricsURL is the /metrics of the manager's pod (the chart's metricsBindAddress, :8080),
// reached on the pods' bridge.
func ManagerMetricsURL(ctx context.Context, cs kubernetes.Interface) (string, error) {
	pod, err := ManagerPod(ctx, cs)
	if err != nil {
		return "", err
	}
	return "http://" + net.JoinHostPort(pod.Status.PodIP, "8080") + "/metrics", nil
}
