package local

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/controlplane"
	"github.com/openhcp/kamaji/core/manager"

	"github.com/openhcp/kamaji/cmd/internal/local/node"

	"github.com/openhcp/kamaji/sdk/testkit/freeport"
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
	// The same start with the Go collector target tenant apiservers run with (GOGC=50 for
	// memory): the part of the ratio below that is that trade-off, not the way to /readyz.
	var bareGOGC []time.Duration
	for i := range 3 {
		d, err := p.bareAPIServer(ctx, 3+i, "GOGC="+controlplane.APIServerGOGC)
		if err != nil {
			return fmt.Errorf("bare kube-apiserver with GOGC=%s: %w", controlplane.APIServerGOGC, err)
		}
		bareGOGC = append(bareGOGC, d)
	}
	ag := percentile(bareGOGC, 50)
	fmt.Fprintf(out, "metric apiserver.bare-gogc.p50 %.3f s\n", ag.Seconds())

	seq, err := p.benchSequential(ctx, out, n, controlplane.ProfileDefault)
	if err != nil {
		return err
	}
	// The lean profile's figures (memory chiefly), from TCPs otherwise the same.
	if _, err := p.benchSequential(ctx, out, n, controlplane.ProfileLean); err != nil {
		return err
	}

	if err := p.benchParallel(ctx, out, n); err != nil {
		return err
	}
	fmt.Fprintf(out, "metric ratio.sequential.p50 %.2f x\n", percentile(seq, 50).Seconds()/a.Seconds())
	fmt.Fprintf(out, "metric ratio.sequential-gogc.p50 %.2f x\n", percentile(seq, 50).Seconds()/ag.Seconds())
	fmt.Fprintf(out, "%d TCPs (1 replica each), apply to /readyz through the Service's ClusterIP from the host; aims: TCP p50 < 3 s, ratio < 3\n", n)
	if err := p.benchSleep(ctx, out, 3); err != nil {
		return err
	}
	if err := p.benchWakes(ctx, out, n); err != nil {
		return err
	}
	return p.benchWorker(ctx, out, 10)
}

// benchSequential applies n TCPs one after another, each once the previous one answers, prints
// their start times, stages and memory, then what they cost at rest once settled (CPU, the
// datastore's reads and writes; bench_idle.go), and deletes them. The TCPs carry the profile (the
// annotation kamaji.clastix.io/control-plane-profile), whatever $KAMAJI_LOCAL_PROFILE says;
// other than the default profile's, the metrics are named "<profile>.tcp..." and
// "<profile>.memory...".
func (p *Plane) benchSequential(ctx context.Context, out io.Writer, n int, profile string) ([]time.Duration, error) {
	prefix, metric := "bench-seq-", ""
	if profile != controlplane.ProfileDefault {
		prefix, metric = "bench-"+profile+"-", profile+"."
	}
	base, baseBy := p.planeMemory()
	// The plane at rest without them (after a pause: the previous run's TCPs were just deleted).
	if err := sleepCtx(ctx, idleSettle/2); err != nil {
		return nil, err
	}
	baseIdle, err := p.measureIdle(ctx, idleWindow)
	if err != nil {
		return nil, err
	}
	var seq []time.Duration
	stages := map[string][]time.Duration{}
	for i := range n {
		tcp := SampleTCP(fmt.Sprintf("%s%02d", prefix, i), "default")
		tcp.Annotations = map[string]string{kamajiv1alpha1.ControlPlaneProfileAnnotation: profile}
		d, at, err := p.tcpToReadyz(ctx, tcp)
		if err != nil {
			return nil, err
		}
		seq = append(seq, d)
		addStages(stages, at)
	}
	running, runningBy := p.planeMemory()
	fmt.Fprintf(out, "metric %stcp.sequential.p50 %.3f s\nmetric %stcp.sequential.p95 %.3f s\n", metric, percentile(seq, 50).Seconds(), metric, percentile(seq, 95).Seconds())
	printStages(out, metric+"tcp.sequential.stage.", stages)
	perTCPMemory(out, metric, n, base, running, baseBy, runningBy)
	if err := sleepCtx(ctx, idleSettle); err != nil {
		return nil, err
	}
	idle, err := p.measureIdle(ctx, idleWindow)
	if err != nil {
		return nil, err
	}
	printIdle(out, metric, n, baseIdle, idle)
	return seq, p.deleteTCPs(ctx, prefix, n)
}

// BenchSequential is benchSequential on a running plane, with the default profile: TCPs applied
// one after another, their start times with the stages, their memory and their cost at rest.
func BenchSequential(ctx context.Context, cfg Config, n int) error {
	p, err := runningPlane(cfg)
	if err != nil {
		return err
	}
	_, err = p.benchSequential(ctx, cfg.Out, n, controlplane.ProfileDefault)
	return err
}

// BenchParallel is benchParallel on a running plane.
func BenchParallel(ctx context.Context, cfg Config, n int) error {
	p, err := runningPlane(cfg)
	if err != nil {
		return err
	}
	return p.benchParallel(ctx, cfg.Out, n)
}

// benchParallel applies n TCPs at once, prints the p50 and p95 of their times to /readyz and the
// p50 of each stage, and deletes them.
func (p *Plane) benchParallel(ctx context.Context, out io.Writer, n int) error {
	par := make([]time.Duration, n)
	at := make([]map[string]time.Duration, n)
	if err := eachTenant(n, func(i int) error {
		var err error
		par[i], at[i], err = p.tcpToReadyz(ctx, SampleTCP(fmt.Sprintf("bench-par-%02d", i), "default"))
		return err
	}); err != nil {
		return err
	}
	stages := map[string][]time.Duration{}
	for _, m := range at {
		addStages(stages, m)
	}
	fmt.Fprintf(out, "metric tcp.parallel.p50 %.3f s\nmetric tcp.parallel.p95 %.3f s\n", percentile(par, 50).Seconds(), percentile(par, 95).Seconds())
	printStages(out, "tcp.parallel.stage.", stages)
	return p.deleteTCPs(ctx, "bench-par-", n)
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

// bareAPIServer starts a kube-apiserver on the plane's admin etcd (its own prefix, a loopback
// port), with env added to the environment, and times exec to /readyz.
func (p *Plane) bareAPIServer(ctx context.Context, i int, env ...string) (time.Duration, error) {
	port, err := freeport.Get()
	if err != nil {
		return 0, err
	}
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
	cmd.Env = append(append(os.Environ(), node.MarkerEnv+"="+p.cfg.StateDir), env...)
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
func (p *Plane) tcpToReadyz(ctx context.Context, tcp *kamajiv1alpha1.TenantControlPlane) (time.Duration, map[string]time.Duration, error) {
	name := tcp.Name
	start := time.Now()
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	clock, err := p.watchStages(wctx, name, start)
	if err != nil {
		return 0, nil, err
	}
	if err := p.cl.Create(ctx, tcp); err != nil {
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

// memory is resident memory (VmRSS) and its anonymous part (RssAnon), in bytes; for the plane
// as a whole, also the machine's memory in use (MemTotal - MemAvailable).
type memory struct{ rss, anon, machine int64 }

// machineMemoryInUse is what the kernel cannot hand to a new process without swapping:
// MemTotal - MemAvailable of /proc/meminfo, in bytes. Unlike a sum of RSS it counts shared
// code once, and it includes the kernel's own memory (page tables, sockets, namespaces).
func machineMemoryInUse() int64 {
	kb, err := procKB("/proc/meminfo", "MemTotal", "MemAvailable")
	if err != nil {
		return 0
	}
	return kb["MemTotal"] - kb["MemAvailable"]
}

// planeMemory sums, over every process of the plane, the resident memory and its anonymous
// part, in all and by program (the base name of the process's first argument). The difference
// between the two is mostly the binaries' code mapped from disk: one copy in the page cache
// serves every tenant at the same version, so RssAnon is what one more tenant costs, and VmRSS
// counts the shared code once per process.
func (p *Plane) planeMemory() (total memory, byProgram map[string]memory) {
	byProgram = map[string]memory{}
	total.machine = machineMemoryInUse()
	for _, pid := range p.planePIDs() {
		dir := filepath.Join("/proc", strconv.Itoa(pid))
		kb, err := procKB(filepath.Join(dir, "status"), "VmRSS", "RssAnon")
		if err != nil {
			continue
		}
		m := memory{rss: kb["VmRSS"], anon: kb["RssAnon"]}
		total.rss += m.rss
		total.anon += m.anon
		if prog := procProgram(dir); prog != "" {
			b := byProgram[prog]
			b.rss += m.rss
			b.anon += m.anon
			byProgram[prog] = b
		}
	}
	return total, byProgram
}

// planePIDs are the processes of the plane: those marked with its state folder, and a
// kubelet node's containers, which do not carry the mark (its cgroups hold them).
func (p *Plane) planePIDs() []int {
	pids := node.MarkedProcesses(p.cfg.StateDir, false)
	if c := p.adminNodeConfig(); fileExists(c.Dir) {
		for _, pid := range c.PIDs() {
			if !slices.Contains(pids, pid) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// procProgram is the program of the process whose /proc folder is dir: the base name of its
// first argument, or "" (a kernel thread, or a process gone).
func procProgram(dir string) string {
	cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
	arg0, _, _ := strings.Cut(string(cmdline), "\x00")
	if arg0 == "" {
		return ""
	}
	return filepath.Base(arg0)
}

// perTCPMemory prints what n running TCPs added to the plane's memory, per TCP: in all (the
// processes' resident and anonymous memory, and the machine's memory in use), and for each of
// the tenant's own programs (the control plane's containers).
func perTCPMemory(out io.Writer, metric string, n int, before, after memory, byBefore, byAfter map[string]memory) {
	mb := func(b int64) float64 { return float64(b) / float64(n) / (1 << 20) }
	fmt.Fprintf(out, "metric %smemory.per-tcp %.0f MB\nmetric %smemory.per-tcp.private %.0f MB\nmetric %smemory.per-tcp.machine %.0f MB\n",
		metric, mb(after.rss-before.rss), metric, mb(after.anon-before.anon), metric, mb(after.machine-before.machine))
	for _, prog := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		a, b := byAfter[prog], byBefore[prog]
		fmt.Fprintf(out, "metric %smemory.per-tcp.%s %.0f MB\nmetric %smemory.per-tcp.%s.private %.0f MB\n", metric, prog, mb(a.rss-b.rss), metric, prog, mb(a.anon-b.anon))
	}
}

// procKB reads the "Name:   1234 kB" lines of a /proc file (a process's status, meminfo) for
// the names asked, in bytes.
func procKB(path string, names ...string) (map[string]int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(names))
	for _, l := range strings.Split(string(data), "\n") {
		name, v, ok := strings.Cut(l, ":")
		if ok && slices.Contains(names, name) {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			out[name] = kb * 1024
		}
	}
	return out, nil
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
