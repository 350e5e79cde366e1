package local

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// benchWorkerIndex is the worker the bench joins (far from make up's and the tests' ones).
const benchWorkerIndex = 9

// BenchWorker measures a worker node on a running plane (make bench, local section): the time
// to join one to a new tenant, the start of pods on it one after another (create to Running,
// p50), the memory of its kubelet and containerd, and what each running pod adds (its runc
// shim and pause process). These are the figures that weigh a real node against the process
// node, which runs the admin cluster's pods as bare processes.
func BenchWorker(ctx context.Context, cfg Config, pods int) error {
	p, err := runningPlane(cfg)
	if err != nil {
		return err
	}
	return p.benchWorker(ctx, cfg.Out, pods)
}

func (p *Plane) benchWorker(ctx context.Context, out io.Writer, pods int) error {
	if !fileExists(p.cfg.KubeBin("kubelet")) || !fileExists(filepath.Join(p.cfg.BinDir, "kamaji-pause")) {
		fmt.Fprintln(out, "worker: skipped (no kubelet or kamaji-pause: hack/node-bins.sh, cmd/pause)")
		return nil
	}
	const tenant = "bench-worker"
	if err := p.cl.Create(ctx, SampleTCP(tenant, "default")); err != nil {
		return err
	}
	defer func() { _ = p.deleteTCPNamed(context.Background(), tenant) }()
	if err := p.WaitTCPReady(ctx, "default", tenant, 3*time.Minute); err != nil {
		return err
	}
	w := p.workerConfig(benchWorkerIndex, KubeVersion)
	// The kubelets and containerds already running (a kubelet admin node's, the plane's own
	// workers') are not the new worker's.
	others := append(processes(w.Kubelet), processes(filepath.Join(w.ContainerdBin, "containerd"))...)
	start := time.Now()
	if _, err := p.ensureWorker(ctx, benchWorkerIndex, "default", tenant); err != nil {
		return err
	}
	join := time.Since(start)
	defer func() { _ = RemoveWorker(context.Background(), p.cfg, benchWorkerIndex) }()
	rc, err := p.tenantRESTConfigIn(ctx, "default", tenant)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	baseRSS := processRSS(w.Kubelet, others) + processRSS(filepath.Join(w.ContainerdBin, "containerd"), others)
	shims0, pause0 := processRSS(filepath.Join(w.ContainerdBin, "containerd-shim-runc-v2"), nil), processRSS("/pause", nil)

	var starts []time.Duration
	for i := range pods {
		name := fmt.Sprintf("bench-%02d", i)
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{
				Containers:                    []corev1.Container{{Name: "sleep", Image: "busybox", Command: []string{"sleep", "3600"}}},
				TerminationGracePeriodSeconds: ptr.To[int64](0),
			},
		}
		t0 := time.Now()
		if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return err
		}
		if err := pollReady(ctx, 2*time.Minute, nil, func(ctx context.Context) error {
			got, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if got.Status.Phase != corev1.PodRunning {
				return fmt.Errorf("pod %s: %s", name, got.Status.Phase)
			}
			return nil
		}); err != nil {
			return err
		}
		starts = append(starts, time.Since(t0))
	}
	perPod := (processRSS(filepath.Join(w.ContainerdBin, "containerd-shim-runc-v2"), nil) - shims0 + processRSS("/pause", nil) - pause0) / int64(max(pods, 1))
	fmt.Fprintf(out, "metric worker.join %.3f s\n", join.Seconds())
	fmt.Fprintf(out, "metric worker.pod.start.p50 %.3f s\n", percentile(starts, 50).Seconds())
	fmt.Fprintf(out, "metric worker.base.rss %.1f MB\n", float64(baseRSS)/1e6)
	fmt.Fprintf(out, "metric worker.pod.overhead.rss %.1f MB\n", float64(perPod)/1e6)
	fmt.Fprintf(out, "worker: kamaji local add-worker to a new tenant until its Node is Ready; %d busybox pods created one after another, create to Running (poll 100 ms); kubelet + containerd resident memory; per running pod, its runc shim and pause process\n", pods)
	return nil
}

// processRSS is the resident memory of every process running the executable at path (its
// /proc/<pid>/exe, or its first argument for a container's process), but those of except.
func processRSS(path string, except []int) int64 {
	var total int64
	for _, pid := range processes(path) {
		if slices.Contains(except, pid) {
			continue
		}
		if kb, err := procKB(filepath.Join("/proc", strconv.Itoa(pid), "status"), "VmRSS"); err == nil {
			total += kb["VmRSS"]
		}
	}
	return total
}

// processes lists the PIDs of the processes running the program at path.
func processes(path string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		exe, _ := os.Readlink(filepath.Join(dir, "exe"))
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		arg0, _, _ := strings.Cut(string(cmdline), "\x00")
		if exe == path || arg0 == path {
			pids = append(pids, pid)
		}
	}
	return pids
}
