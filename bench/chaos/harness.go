package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// Names the suite gives the plugins in kamaji.yaml (the "plugin" label of the kamaji_plugin_*
// metrics) and the DataStore.
const (
	etcdPluginName = "etcd"
	hungPluginName = "hung-addon"
	dataStoreName  = "chaos-etcd"
	namespace      = "default"
)

// harness is the environment of one scenario: a real admin kube-apiserver and etcd (testenv,
// no kubelet: pods never run), the DataStore's own etcd behind a relay that can be cut, and the
// manager as its own process (`kamaji manager`), which starts the plugins as processes.
type harness struct {
	tb  *benchtb.TB
	ctx context.Context

	plane   *testenv.Plane
	c       client.Client
	etcd    *testkit.Etcd
	etcdCli *clientv3.Client // root, straight to etcd (not through the relay)
	hole    *blackhole

	kamajiBin, etcdPluginBin, hungPluginBin string
	workers                                 int

	dir, kubeconfig, certDir, cfgPath, logPath string
	webhookPort, metricsPort                   int
	mgr                                        *exec.Cmd
	mgrExited                                  <-chan struct{}
}

func setup(tb *benchtb.TB, o options) (*harness, error) {
	h := &harness{tb: tb, ctx: context.Background(), kamajiBin: o.kamaji, etcdPluginBin: o.etcdPlugin, hungPluginBin: o.hungPlugin, workers: o.workers}
	plane, err := testenv.Start(h.ctx, testenv.Options{})
	if err != nil {
		return nil, err
	}
	tb.Cleanup(plane.Stop)
	h.plane = plane
	if err := plane.InstallCRDs(h.ctx); err != nil {
		return nil, err
	}
	h.etcd = testkit.StartEtcd(tb)
	h.etcdCli = h.etcd.Client(tb)
	if h.hole, err = newBlackhole(h.etcd.Endpoints[0]); err != nil {
		return nil, err
	}
	tb.Cleanup(func() { _ = h.hole.Close() })

	h.dir = tb.TempDir()
	h.kubeconfig = filepath.Join(h.dir, "kubeconfig")
	if err := plane.WriteKubeconfig(h.kubeconfig); err != nil {
		return nil, err
	}
	h.certDir = filepath.Join(h.dir, "webhook")
	if err := plane.ServingCert(h.certDir); err != nil {
		return nil, err
	}
	plugins := []settings.Plugin{}
	p, err := testenv.PluginEntry(h.etcdPluginBin, etcdPluginName, settings.KindDataStore, "etcd")
	if err != nil {
		return nil, err
	}
	plugins = append(plugins, p)
	if h.hungPluginBin != "" {
		// It serves the coredns addon: a TCP asking for spec.addons.coreDNS gets its Render.
		p, err := testenv.PluginEntry(h.hungPluginBin, hungPluginName, settings.KindAddon, "coredns")
		if err != nil {
			return nil, err
		}
		plugins = append(plugins, p)
	}
	cfg, _ := yaml.Marshal(map[string]any{"plugins": plugins})
	h.cfgPath = filepath.Join(h.dir, "kamaji.yaml")
	if err := os.WriteFile(h.cfgPath, cfg, 0o600); err != nil {
		return nil, err
	}
	if h.webhookPort, err = testenv.FreePort(); err != nil {
		return nil, err
	}
	if h.metricsPort, err = testenv.FreePort(); err != nil {
		return nil, err
	}
	h.logPath = filepath.Join(os.TempDir(), fmt.Sprintf("kamaji-chaos-manager-%d.log", os.Getpid()))
	if err := h.startManager(); err != nil {
		return nil, err
	}
	tb.Cleanup(h.killManager)
	if err := plane.RegisterWebhooks(h.ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(h.webhookPort))); err != nil {
		return nil, err
	}
	if h.c, err = client.New(plane.Config, client.Options{Scheme: manager.Scheme()}); err != nil {
		return nil, err
	}
	ds := &kamajiv1alpha1.DataStore{
		ObjectMeta: metav1.ObjectMeta{Name: dataStoreName},
		Spec: kamajiv1alpha1.DataStoreSpec{Driver: "etcd", Endpoints: []string{h.hole.Addr()}, TLSConfig: &kamajiv1alpha1.TLSConfig{
			CertificateAuthority: kamajiv1alpha1.CertKeyPair{Certificate: kamajiv1alpha1.ContentRef{Content: h.etcd.CACert}, PrivateKey: &kamajiv1alpha1.ContentRef{Content: h.etcd.CAKey}},
			ClientCertificate:    &kamajiv1alpha1.ClientCertificate{Certificate: kamajiv1alpha1.ContentRef{Content: h.etcd.RootCert}, PrivateKey: kamajiv1alpha1.ContentRef{Content: h.etcd.RootKey}},
		}},
	}
	if err := retry(h.ctx, time.Minute, func() error { return h.c.Create(h.ctx, ds) }); err != nil {
		return nil, fmt.Errorf("DataStore: %w", err)
	}
	if err := retry(h.ctx, 2*time.Minute, func() error {
		got := &kamajiv1alpha1.DataStore{}
		if err := h.c.Get(h.ctx, client.ObjectKey{Name: dataStoreName}, got); err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(got.Status.Conditions, "Ready") {
			return fmt.Errorf("DataStore not Ready")
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("%w; manager log %s", err, h.logPath)
	}
	return h, nil
}

// startManager starts `kamaji manager` (appending to its log): the real binary, leader election
// off, the plugins of kamaji.yaml started by it (and killed with it: Pdeathsig).
func (h *harness) startManager() error {
	logf, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	mgr := exec.Command(h.kamajiBin, "manager", "--config", h.cfgPath, "--leader-elect=false", "--datastore="+dataStoreName,
		"--metrics-bind-address=127.0.0.1:"+strconv.Itoa(h.metricsPort), "--health-probe-bind-address=0",
		"--webhook-port="+strconv.Itoa(h.webhookPort), "--webhook-cert-dir="+h.certDir,
		"--max-concurrent-tcp-reconciles="+strconv.Itoa(h.workers))
	mgr.Env = append(os.Environ(), "KUBECONFIG="+h.kubeconfig)
	mgr.Stdout, mgr.Stderr = logf, logf
	// It dies with the harness, its plugins with it.
	exited, err := child.Start(mgr)
	if err != nil {
		logf.Close()
		return err
	}
	go func() { <-exited; logf.Close() }()
	h.mgr, h.mgrExited = mgr, exited
	return nil
}

// killManager SIGKILLs the manager and waits for it; its plugins die with it (Pdeathsig).
func (h *harness) killManager() {
	if h.mgr == nil {
		return
	}
	_ = h.mgr.Process.Signal(syscall.SIGKILL)
	<-h.mgrExited
	h.mgr = nil
}

// waitManagerUp waits for the manager's metrics endpoint after a (re)start.
func (h *harness) waitManagerUp(timeout time.Duration) error {
	return retry(h.ctx, timeout, func() error { _, err := h.scrape(); return err })
}

func (h *harness) scrape() (metricstest.Families, error) {
	return metricstest.Scrape(fmt.Sprintf("http://127.0.0.1:%d/metrics", h.metricsPort))
}

// pluginPIDs are the manager's child processes running bin (the plugins it started).
func (h *harness) pluginPIDs(bin string) []int {
	if h.mgr == nil {
		return nil
	}
	want, _ := filepath.Abs(bin)
	if w, err := filepath.EvalSymlinks(want); err == nil {
		want = w
	}
	var pids []int
	for _, pid := range testenv.Children(h.mgr.Process.Pid) {
		if exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe")); err == nil && exe == want {
			pids = append(pids, pid)
		}
	}
	return pids
}

// retry calls f every 250 ms until it succeeds or timeout passes, returning its last error.
func retry(ctx context.Context, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
