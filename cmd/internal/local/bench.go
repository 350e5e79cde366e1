package local

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/manager"

	"github.com/openhcp/kamaji/cmd/internal/local/node"
)

// Bench measures, on a running plane: (a) a bare kube-apiserver start to /readyz on the
// plane's etcd, and (b) the time from applying a TenantControlPlane to its apiserver answering
// /readyz through its Service, for n TCPs one after another and n at once. It prints
// "metric NAME VALUE UNIT" lines (hack/bench.sh's format).
func Bench(ctx context.Context, cfg Config, n int) error {
	p, err := runningPlane(cfg)
	if err != nil {
		return err
	}
	out := cfg.Out

	var bare []time.Duration
	for i := range 3 {
		d, err := p.bareAPIServer(ctx, i)
		if err != nil {
			return fmt.Errorf("bare kube-apiserver: %w", err)
		}
		bare = append(bare, d)
	}
	a := percentile(bare, 50)
	fmt.Fprintf(out, "metric apiserver.bare.p50 %.3f s\n", a.Seconds())

	baseRSS, baseAnon := p.planeMemory()
	var seq []time.Duration
	stages := map[string][]time.Duration{}
	for i := range n {
		d, at, err := p.tcpToReadyz(ctx, fmt.Sprintf("bench-seq-%02d", i))
		if err != nil {
			return err
		}
		seq = append(seq, d)
		for k, v := range at {
			stages[k] = append(stages[k], v)
		}
	}
	rss, anon := p.planeMemory()
	perTCP := float64(rss-baseRSS) / float64(n) / (1 << 20)
	perTCPAnon := float64(anon-baseAnon) / float64(n) / (1 << 20)
	fmt.Fprintf(out, "metric tcp.sequential.p50 %.3f s\nmetric tcp.sequential.p95 %.3f s\n", percentile(seq, 50).Seconds(), percentile(seq, 95).Seconds())
	for _, st := range benchStages {
		if ds := stages[st]; len(ds) > 0 {
			fmt.Fprintf(out, "metric tcp.sequential.stage.%s.p50 %.3f s\n", st, percentile(ds, 50).Seconds())
		}
	}
	fmt.Fprintf(out, "metric memory.per-tcp %.0f MB\nmetric memory.per-tcp.private %.0f MB\n", perTCP, perTCPAnon)
	if err := p.deleteTCPs(ctx, "bench-seq-", n); err != nil {
		return err
	}

	par := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			par[i], _, errs[i] = p.tcpToReadyz(ctx, fmt.Sprintf("bench-par-%02d", i))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "metric tcp.parallel.p50 %.3f s\nmetric tcp.parallel.p95 %.3f s\n", percentile(par, 50).Seconds(), percentile(par, 95).Seconds())
	fmt.Fprintf(out, "metric ratio.sequential.p50 %.2f x\n", percentile(seq, 50).Seconds()/a.Seconds())
	fmt.Fprintf(out, "%d TCPs (1 replica each), apply to /readyz through the Service's ClusterIP from the host; aims: TCP p50 < 3 s, ratio < 3\n", n)
	if err := p.deleteTCPs(ctx, "bench-par-", n); err != nil {
		return err
	}
	if err := p.benchSleep(ctx, out, 3); err != nil {
		return err
	}
	return p.benchWorker(ctx, out, 10)
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

// bareAPIServer starts a kube-apiserver on the plane's admin etcd (its own prefix, a loopback
// port) and times exec to /readyz.
func (p *Plane) bareAPIServer(ctx context.Context, i int) (time.Duration, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "kamaji-bench-apiserver-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(p.cfg.KubeBin("kube-apiserver"),
		"--etcd-servers=http://"+loopback(p.cfg.AdminEtcdPort), "--etcd-prefix=/bench-"+strconv.Itoa(i)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36),
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(port),
		"--cert-dir="+dir, "--tls-cert-file="+p.pkiFile("apiserver.crt"), "--tls-private-key-file="+p.pkiFile("apiserver.key"),
		"--client-ca-file="+p.pkiFile("ca.crt"), "--service-account-key-file="+p.pkiFile("sa.key"),
		"--service-account-signing-key-file="+p.pkiFile("sa.key"), "--service-account-issuer=https://kubernetes.default.svc",
		"--service-cluster-ip-range=10.0.0.0/24", "--authorization-mode=RBAC", "--endpoint-reconciler-type=none")
	cmd.Env = append(os.Environ(), node.MarkerEnv+"="+p.cfg.StateDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }()
	err = pollReady(ctx, time.Minute, nil, httpCheck(insecureClient, "https://"+loopback(port)+"/readyz"))
	return time.Since(start), err
}

// tcpToReadyz applies a sample TCP and times until its apiserver answers /readyz through the
// Service's ClusterIP (kube-proxy's rules), as a tenant user would reach it; it also returns
// when each milestone on the way was reached (bench_stages.go).
func (p *Plane) tcpToReadyz(ctx context.Context, name string) (time.Duration, map[string]time.Duration, error) {
	start := time.Now()
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	clock, err := p.watchStages(wctx, name, start)
	if err != nil {
		return 0, nil, err
	}
	if err := p.cl.Create(ctx, SampleTCP(name, "default")); err != nil {
		return 0, nil, err
	}
	clusterIP := ""
	err = pollReady(ctx, 3*time.Minute, nil, func(ctx context.Context) error {
		if clusterIP == "" { // read once: polling the Service would load the plane being measured
			svc, err := p.cs.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			clusterIP = svc.Spec.ClusterIP
		}
		// A short deadline per attempt: a connection made before kube-proxy has the Service's
		// rules goes nowhere, and must not hold the measurement up.
		actx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(actx, http.MethodGet, "https://"+net.JoinHostPort(clusterIP, "6443")+"/readyz", nil)
		resp, err := insecureClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %d", resp.StatusCode)
		}
		return nil
	})
	if err != nil {
		return 0, nil, p.tenantDiagnosis(ctx, "default", name, err)
	}
	return time.Since(start), clock.snapshot(), nil
}

func (p *Plane) deleteTCPs(ctx context.Context, prefix string, n int) error {
	for i := range n {
		tcp := &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s%02d", prefix, i), Namespace: "default"}}
		if err := p.cl.Delete(ctx, tcp); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return pollReady(ctx, 3*time.Minute, nil, func(ctx context.Context) error {
		pods, err := p.cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		left := 0
		for _, pod := range pods.Items {
			if strings.HasPrefix(pod.Name, prefix) {
				left++
			}
		}
		if left > 0 {
			return fmt.Errorf("%d pods of %s* left", left, prefix)
		}
		return nil
	})
}

// planeMemory sums, over every process of the plane, the resident memory (VmRSS) and its
// anonymous part (RssAnon), in bytes. The difference is mostly the binaries' code mapped from
// disk: one copy in the page cache serves every tenant at the same version, so RssAnon is what
// one more tenant costs, and VmRSS counts the shared code once per process.
func (p *Plane) planeMemory() (rss, anon int64) {
	for _, pid := range node.MarkedProcesses(p.cfg.StateDir, false) {
		data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				rss += statusKB(v)
			} else if v, ok := strings.CutPrefix(l, "RssAnon:"); ok {
				anon += statusKB(v)
			}
		}
	}
	return rss, anon
}

// statusKB reads a "  1234 kB" value of /proc/<pid>/status, in bytes.
func statusKB(v string) int64 {
	kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
	return kb * 1024
}

// runningPlane connects to the plane running in cfg's state folder (for the bench commands).
func runningPlane(cfg Config) (*Plane, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	p := &Plane{cfg: cfg}
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.AdminKubeconfig())
	if err != nil {
		return nil, fmt.Errorf("no running plane in %s: %w", cfg.StateDir, err)
	}
	rc.QPS, rc.Burst = 100, 200 // client-side throttling would show up in the figures
	p.rest = rc
	if p.cs, err = kubernetes.NewForConfig(rc); err != nil {
		return nil, err
	}
	if p.cl, err = client.New(rc, client.Options{Scheme: manager.Scheme()}); err != nil {
		return nil, err
	}
	return p, nil
}
