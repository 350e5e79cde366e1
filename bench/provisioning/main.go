// Command provisioning measures how fast the manager provisions many TenantControlPlanes at
// once against a real admin apiserver (pods do not run): the time until every TCP has its
// datastore slice, Secrets, Service and Deployment, the rate, the manager's peak RSS and CPU
// seconds, where the machine's CPU went (cpuFigures) and where the time went (stepFigures,
// requestFigures); then, with -idle, what it does at rest (idleFigures). The manager runs as
// its own process (`kamaji manager`), so its figures are its own. Figures are printed as
// "metric <name> <value> <unit>" lines for hack/bench.sh.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/openhcp/kamaji/bench/internal/benchtb"
	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/manager"
	"github.com/openhcp/kamaji/core/metrics/metricstest"
	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/core/testenv"
	"github.com/openhcp/kamaji/sdk/testkit"
	"github.com/openhcp/kamaji/sdk/testkit/child"
)

func main() {
	count := flag.Int("tcps", 300, "TenantControlPlanes to create at once")
	workers := flag.Int("workers", 10, "--max-concurrent-tcp-reconciles of the manager")
	kamaji := flag.String("kamaji", "", "path of the kamaji binary")
	plugin := flag.String("plugin", "", "path of the etcd datastore plugin binary")
	coreDNS := flag.String("coredns", "", "path of the coredns addon plugin binary: the TCPs enable the addon (empty: no addons)")
	kubeProxy := flag.String("kubeproxy", "", "path of the kube-proxy addon plugin binary: the TCPs enable the addon")
	replicas := flag.Int("replicas", 1, "spec.controlPlane.deployment.replicas of each TCP")
	idle := flag.Duration("idle", 10*time.Minute, "after the provisioning, how long to watch the manager at rest (0: not at all)")
	flag.StringVar(&pprofAddr, "pprof", "", "the manager's --pprof-bind-address, to profile it meanwhile (empty: off)")
	flag.StringVar(&apiserverProfile, "apiserver-profile", "", "write a CPU profile of the admin apiserver, taken over the first 20 s of the provisioning, to this file (empty: none)")
	flag.Parse()
	tb := &benchtb.TB{Prog: "provisioning"}
	defer tb.RunCleanups()
	w := workload{count: *count, replicas: int32(*replicas), coreDNS: *coreDNS, kubeProxy: *kubeProxy}
	if err := run(tb, w, *workers, *kamaji, *plugin, *idle); err != nil {
		tb.Fatal(err)
	}
}

// workload is the TCPs the run creates: like Kamaji users write them when the addons are given
// (CoreDNS and kube-proxy, one replica, on an etcd DataStore with TLS client certificates and
// auth enabled).
type workload struct {
	count              int
	replicas           int32
	coreDNS, kubeProxy string // addon plugin binaries; empty: the addon is off
}

// pprofAddr is -pprof; apiserverProfile is -apiserver-profile.
var pprofAddr, apiserverProfile string

func run(tb *benchtb.TB, w workload, workers int, kamajiBin, pluginBin string, idle time.Duration) error {
	count := w.count
	ctx := context.Background()
	plane, err := testenv.Start(ctx, testenv.Options{})
	if err != nil {
		return err
	}
	tb.Cleanup(plane.Stop)
	if err := plane.InstallCRDs(ctx); err != nil {
		return err
	}
	etcd := testkit.StartEtcd(tb)
	dir := tb.TempDir()

	// The manager as a process: kubeconfig, kamaji.yaml, webhook serving certificate.
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := plane.WriteKubeconfig(kubeconfig); err != nil {
		return err
	}
	certDir := filepath.Join(dir, "webhook")
	if err := plane.ServingCert(certDir); err != nil {
		return err
	}
	p, err := testenv.PluginEntry(pluginBin, "etcd", settings.KindDataStore, "etcd")
	if err != nil {
		return err
	}
	plugins := []settings.Plugin{p}
	for _, a := range []struct{ bin, name string }{{w.coreDNS, "coredns"}, {w.kubeProxy, "kube-proxy"}} {
		if a.bin == "" {
			continue
		}
		ap, err := testenv.PluginEntry(a.bin, a.name, settings.KindAddon, a.name)
		if err != nil {
			return err
		}
		plugins = append(plugins, ap)
	}
	cfg, _ := yaml.Marshal(map[string]any{"plugins": plugins})
	cfgPath := filepath.Join(dir, "kamaji.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return err
	}
	port, err := testenv.FreePort()
	if err != nil {
		return err
	}
	metricsPort, err := testenv.FreePort()
	if err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "manager.log"))
	if err != nil {
		return err
	}
	mgr := exec.Command(kamajiBin, "manager", "--config", cfgPath, "--leader-elect=false", "--datastore=default",
		"--metrics-bind-address=127.0.0.1:"+strconv.Itoa(metricsPort), "--health-probe-bind-address=0", "--webhook-port="+strconv.Itoa(port), "--webhook-cert-dir="+certDir,
		"--max-concurrent-tcp-reconciles="+strconv.Itoa(workers))
	if pprofAddr != "" {
		mgr.Args = append(mgr.Args, "--pprof-bind-address="+pprofAddr)
	}
	mgr.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	mgr.Stdout, mgr.Stderr = logf, logf
	// It dies with the bench even when the bench is killed, its plugins with it.
	mgrExited, err := child.Start(mgr)
	if err != nil {
		return err
	}
	tb.Cleanup(func() { _ = mgr.Process.Kill(); <-mgrExited })
	if err := plane.RegisterWebhooks(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err != nil {
		return err
	}

	c, err := client.New(plane.Config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		return err
	}
	ds := &kamajiv1alpha1.DataStore{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
		Spec: kamajiv1alpha1.DataStoreSpec{Driver: "etcd", Endpoints: etcd.Endpoints, TLSConfig: &kamajiv1alpha1.TLSConfig{
			CertificateAuthority: kamajiv1alpha1.CertKeyPair{Certificate: kamajiv1alpha1.ContentRef{Content: etcd.CACert}, PrivateKey: &kamajiv1alpha1.ContentRef{Content: etcd.CAKey}},
			ClientCertificate:    &kamajiv1alpha1.ClientCertificate{Certificate: kamajiv1alpha1.ContentRef{Content: etcd.RootCert}, PrivateKey: kamajiv1alpha1.ContentRef{Content: etcd.RootKey}},
		}},
	}
	if err := createWithRetry(ctx, c, ds); err != nil {
		return fmt.Errorf("DataStore: %w", err)
	}
	if err := waitFor(ctx, 2*time.Minute, func() bool {
		got := &kamajiv1alpha1.DataStore{}
		return c.Get(ctx, client.ObjectKey{Name: "default"}, got) == nil && meta.IsStatusConditionTrue(got.Status.Conditions, "Ready")
	}); err != nil {
		return fmt.Errorf("DataStore never Ready; manager log %s", logf.Name())
	}
	cpu0, _ := cpuSeconds(mgr.Process.Pid)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)

	before, err := metricstest.Scrape(metricsURL)
	if err != nil {
		return err
	}
	deps, err := watchDeployments(ctx, plane.Config, "default")
	if err != nil {
		return err
	}
	apiBefore, err := apiserverRequests(ctx, plane.Config)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "provisioning: creating %d TenantControlPlanes (%s; manager with %d workers)\n", count, w, workers)
	cpuBefore := sampleCPU(mgr.Process.Pid, etcd.DataDir)
	profiled := profileAPIServer(ctx, plane.Config, apiserverProfile, 20*time.Second)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, count)
	sem := make(chan struct{}, 20)
	for i := range count {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			tcp := w.tcp(fmt.Sprintf("tenant-%04d", i))
			if err := c.Create(ctx, tcp); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return fmt.Errorf("creating TCPs: %w", err)
	}
	created := time.Since(start)

	var peakRSS int64
	done := 0
	err = waitFor(ctx, 20*time.Minute, func() bool {
		if rss, err := rssBytes(mgr.Process.Pid); err == nil && rss > peakRSS {
			peakRSS = rss
		}
		done = deps.count()
		return done >= count
	})
	elapsed := time.Since(start)
	if err != nil {
		return fmt.Errorf("only %d of %d TCPs provisioned after %s; manager log %s", done, count, elapsed, logf.Name())
	}
	cpu1, _ := cpuSeconds(mgr.Process.Pid)
	cpuAfter := sampleCPU(mgr.Process.Pid, etcd.DataDir)
	if hwm, err := statusKB(mgr.Process.Pid, "VmHWM:"); err == nil && hwm*1024 > peakRSS {
		peakRSS = hwm * 1024
	}
	cpu := cpu1 - cpu0
	fmt.Printf("metric tcps %d count\n", count)
	fmt.Printf("metric create.seconds %.2f s\n", created.Seconds())
	fmt.Printf("metric provisioned.seconds %.2f s\n", elapsed.Seconds())
	fmt.Printf("metric rate %.2f tcp/s\n", float64(count)/elapsed.Seconds())
	fmt.Printf("metric manager.rss.peak %.1f MB\n", float64(peakRSS)/(1<<20))
	fmt.Printf("metric manager.cpu %.2f s\n", cpu)
	fmt.Printf("metric manager.cpu.per-tcp %.1f ms\n", cpu*1000/float64(count))
	cpuFigures(cpuBefore, cpuAfter, count)
	if err := <-profiled; err != nil {
		return err
	}
	if err := stepFigures(before, metricsURL, count); err != nil {
		return err
	}
	if err := requestFigures(ctx, plane.Config, apiBefore, count); err != nil {
		return err
	}
	if err := scrapeFigures(metricsURL, mgr.Process.Pid); err != nil {
		return err
	}
	verdict := "meets"
	if float64(count)/elapsed.Seconds() < 20 {
		verdict = "MISSES"
	}
	fmt.Printf("%d TCPs (%s) with datastore slice, Secrets, Service and Deployment in %.1f s: %.1f TCP/s %s the aim of 20 TCP/s; peak RSS %.0f MB (aim < 150 MB at 1,000); Kamaji measured 0.9 TCP/s at 100 here\n",
		count, w, elapsed.Seconds(), float64(count)/elapsed.Seconds(), verdict, float64(peakRSS)/(1<<20))
	if idle <= 0 {
		return nil
	}
	return idleFigures(ctx, plane.Config, metricsURL, mgr.Process.Pid, count, idle)
}

func (w workload) String() string {
	s := fmt.Sprintf("replicas %d", w.replicas)
	if w.coreDNS != "" {
		s += ", coreDNS"
	}
	if w.kubeProxy != "" {
		s += ", kubeProxy"
	}
	return s
}

func (w workload) tcp(name string) *kamajiv1alpha1.TenantControlPlane {
	tcp := &kamajiv1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: kamajiv1alpha1.TenantControlPlaneSpec{
			ControlPlane: kamajiv1alpha1.ControlPlane{
				Service:    kamajiv1alpha1.ServiceSpec{ServiceType: "ClusterIP"},
				Deployment: kamajiv1alpha1.DeploymentSpec{Replicas: &w.replicas},
			},
			Kubernetes: kamajiv1alpha1.KubernetesSpec{Version: "v1.37.2"},
		},
	}
	if w.coreDNS != "" {
		tcp.Spec.Addons.CoreDNS = &kamajiv1alpha1.AddonSpec{}
	}
	if w.kubeProxy != "" {
		tcp.Spec.Addons.KubeProxy = &kamajiv1alpha1.AddonSpec{}
	}
	return tcp
}

// stepFigures prints where the provisioning's time went: reconcile passes per TCP, and per
// reconcile step the time spent in all (summed over the workers) and per run.
func stepFigures(before metricstest.Families, metricsURL string, count int) error {
	after, err := metricstest.Scrape(metricsURL)
	if err != nil {
		return err
	}
	passes := after.Sum("controller_runtime_reconcile_total", map[string]string{"controller": "tenantcontrolplane"}) -
		before.Sum("controller_runtime_reconcile_total", map[string]string{"controller": "tenantcontrolplane"})
	fmt.Printf("metric passes.per-tcp %.2f count\n", passes/float64(count))
	type step struct {
		name       string
		runs, secs float64
	}
	var steps []step
	// deltas adds a histogram family's series that ran during the provisioning, named by name.
	deltas := func(family string, name func(ls map[string]string) string) {
		for _, ls := range after.Series(family, nil) {
			runs, secs := after.Histogram(family, ls)
			runs0, secs0 := before.Histogram(family, ls)
			if runs-runs0 > 0 {
				steps = append(steps, step{name(ls), runs - runs0, secs - secs0})
			}
		}
	}
	deltas("kamaji_handler_time_seconds", func(ls map[string]string) string { return "step." + ls["step"] + "." + ls["result"] })
	deltas("kamaji_plugin_rpc_duration_seconds", func(ls map[string]string) string {
		return "rpc." + ls["plugin"] + "." + strings.ReplaceAll(ls["method"], "/", ".")
	})
	sort.Slice(steps, func(i, j int) bool { return steps[i].secs > steps[j].secs })
	for _, s := range steps {
		fmt.Printf("metric %s.seconds %.2f s\n", s.name, s.secs)
		fmt.Printf("metric %s.ms-per-run %.2f ms\n", s.name, s.secs*1000/s.runs)
	}
	return nil
}

func createWithRetry(ctx context.Context, c client.Client, obj client.Object) error {
	var last error
	if err := waitFor(ctx, time.Minute, func() bool { last = c.Create(ctx, obj); return last == nil }); err != nil {
		return last
	}
	return nil
}

func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}

// cpuSeconds is the process's user+system CPU time.
func cpuSeconds(pid int) (float64, error) {
	st, err := readStat(pid)
	return st.cpu, err
}

// procStat is what the figures use of /proc/<pid>/stat.
type procStat struct {
	ppid int
	comm string
	cpu  float64 // user+system seconds
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name, in parentheses, may hold spaces: the fields follow its last ')'.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, b)
	}
	f := strings.Fields(string(b[end+2:]))
	ppid, _ := strconv.Atoi(f[1])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return procStat{ppid: ppid, comm: string(b[open+1 : end]), cpu: (ut + st) / 100}, nil // USER_HZ is 100
}

func rssBytes(pid int) (int64, error) {
	kb, err := statusKB(pid, "VmRSS:")
	return kb * 1024, err
}

func statusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			return strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s not found", field)
}

// apiserverRequests reads the admin apiserver's request counters (apiserver_request_total).
func apiserverRequests(ctx context.Context, cfg *rest.Config) (metricstest.Families, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("apiserver /metrics: %w", err)
	}
	return metricstest.Parse(bytes.NewReader(raw))
}

// requestDeltas counts the admin apiserver's requests between two scrapes of its metrics, by
// "verb.resource[/subresource]" (verb in lower case), watches and non-resource requests left out.
func requestDeltas(before, after metricstest.Families) map[string]float64 {
	sums := map[string]float64{}
	for _, ls := range after.Series("apiserver_request_total", nil) {
		if ls["verb"] == "WATCH" || ls["resource"] == "" {
			continue
		}
		v, _ := after.Value("apiserver_request_total", ls)
		v0, _ := before.Value("apiserver_request_total", ls)
		res := ls["resource"]
		if ls["subresource"] != "" {
			res += "/" + ls["subresource"]
		}
		sums[strings.ToLower(ls["verb"])+"."+res] += v - v0
	}
	return sums
}

// requestFigures prints the admin apiserver's requests per TCP during the provisioning, by verb
// and resource, the most frequent first: the round trips a TCP costs the shared apiserver; then
// the calls it made to the manager's webhooks per TCP.
func requestFigures(ctx context.Context, cfg *rest.Config, before metricstest.Families, count int) error {
	after, err := apiserverRequests(ctx, cfg)
	if err != nil {
		return err
	}
	type row struct {
		key string
		n   float64
	}
	var rows []row
	total := 0.0
	for k, n := range requestDeltas(before, after) {
		if n > 0 {
			rows = append(rows, row{k, n})
			total += n
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].n > rows[j].n })
	fmt.Printf("metric requests.per-tcp %.1f count\n", total/float64(count))
	for _, r := range rows {
		fmt.Printf("metric requests.%s.per-tcp %.2f count\n", r.key, r.n/float64(count))
	}
	// The calls the apiserver made to the manager's webhooks, each a round trip carrying the
	// object (twice on an update), by webhook and operation.
	calls := map[string]float64{}
	callsTotal := 0.0
	for _, ls := range after.Series("apiserver_admission_webhook_request_total", nil) {
		v, _ := after.Value("apiserver_admission_webhook_request_total", ls)
		v0, _ := before.Value("apiserver_admission_webhook_request_total", ls)
		calls[ls["name"]+"."+strings.ToLower(ls["operation"])] += v - v0
		callsTotal += v - v0
	}
	fmt.Printf("metric webhook-calls.per-tcp %.2f count\n", callsTotal/float64(count))
	keys := make([]string, 0, len(calls))
	for k := range calls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if calls[k] > 0 {
			fmt.Printf("metric webhook-calls.%s.per-tcp %.2f count\n", k, calls[k]/float64(count))
		}
	}
	return nil
}
