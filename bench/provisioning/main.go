// Command provisioning measures how fast the manager provisions many TenantControlPlanes at
// once against a real admin apiserver (pods do not run): the time until every TCP has its
// datastore slice, Secrets, Service and Deployment, the rate, and the manager's peak RSS and
// CPU seconds; then, with -idle, what it does at rest (idleFigures). The manager runs as its own process (`kamaji manager`), so its figures are its
// own. Figures are printed as "metric <name> <value> <unit>" lines for hack/bench.sh.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/openhcp/kamaji/bench/internal/benchtb"
	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/manager"
	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/core/testenv"
	"github.com/openhcp/kamaji/sdk/testkit"
)

func main() {
	count := flag.Int("tcps", 300, "TenantControlPlanes to create at once")
	workers := flag.Int("workers", 10, "--max-concurrent-tcp-reconciles of the manager")
	kamaji := flag.String("kamaji", "", "path of the kamaji binary")
	plugin := flag.String("plugin", "", "path of the etcd datastore plugin binary")
	idle := flag.Duration("idle", 10*time.Minute, "after the provisioning, how long to watch the manager at rest (0: not at all)")
	flag.Parse()
	tb := &benchtb.TB{Prog: "provisioning"}
	defer tb.RunCleanups()
	if err := run(tb, *count, *workers, *kamaji, *plugin, *idle); err != nil {
		tb.Fatal(err)
	}
}

func run(tb *benchtb.TB, count, workers int, kamajiBin, pluginBin string, idle time.Duration) error {
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
	cfg, _ := yaml.Marshal(map[string]any{"plugins": []settings.Plugin{p}})
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
	mgr.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	mgr.Stdout, mgr.Stderr = logf, logf
	mgr.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := mgr.Start(); err != nil {
		return err
	}
	tb.Cleanup(func() { _ = mgr.Process.Kill(); _ = mgr.Wait() })
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

	fmt.Fprintf(os.Stderr, "provisioning: creating %d TenantControlPlanes (manager with %d workers)\n", count, workers)
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
			tcp := &kamajiv1alpha1.TenantControlPlane{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("tenant-%03d", i), Namespace: "default"},
				Spec: kamajiv1alpha1.TenantControlPlaneSpec{
					ControlPlane: kamajiv1alpha1.ControlPlane{Service: kamajiv1alpha1.ServiceSpec{ServiceType: "ClusterIP"}},
					Kubernetes:   kamajiv1alpha1.KubernetesSpec{Version: "v1.37.2"},
				},
			}
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
		var deps appsv1.DeploymentList
		if err := c.List(ctx, &deps, client.InNamespace("default")); err != nil {
			return false
		}
		done = len(deps.Items)
		return done >= count
	})
	elapsed := time.Since(start)
	if err != nil {
		return fmt.Errorf("only %d of %d TCPs provisioned after %s; manager log %s", done, count, elapsed, logf.Name())
	}
	cpu1, _ := cpuSeconds(mgr.Process.Pid)
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
	verdict := "meets"
	if float64(count)/elapsed.Seconds() < 10 {
		verdict = "MISSES"
	}
	fmt.Printf("%d TCPs with datastore slice, Secrets, Service and Deployment in %.1f s: %.1f TCP/s %s the aim of 10 TCP/s; peak RSS %.0f MB (aim < 250 MB); Kamaji publishes ~1 TCP/s\n",
		count, elapsed.Seconds(), float64(count)/elapsed.Seconds(), verdict, float64(peakRSS)/(1<<20))
	if idle <= 0 {
		return nil
	}
	return idleFigures(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort), mgr.Process.Pid, count, idle)
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
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil // USER_HZ is 100 on Linux
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
