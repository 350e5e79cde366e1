package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// cpuSample is the CPU seconds used so far by each process role of the run (the bench and what
// it started: the admin apiserver and its etcd, the DataStore's etcd, the manager and its
// plugins) and by the whole machine, busy and in all, from /proc.
type cpuSample struct {
	roles                map[string]float64
	machineBusy, machine float64
}

// sampleCPU reads the CPU seconds of this process and all its descendants by role, and the
// machine's. datastoreDir tells the DataStore's etcd from the admin one.
func sampleCPU(managerPID int, datastoreDir string) cpuSample {
	s := cpuSample{roles: map[string]float64{}}
	procs := map[int]procStat{}
	children := map[int][]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue // gone meanwhile
		}
		procs[pid] = st
		children[st.ppid] = append(children[st.ppid], pid)
	}
	// role walks the tree from the bench; the manager's descendants are its plugins.
	var walk func(pid int, underManager bool)
	walk = func(pid int, underManager bool) {
		p := procs[pid]
		role := "other"
		switch {
		case pid == os.Getpid():
			role = "bench"
		case pid == managerPID:
			role = "manager"
		case underManager:
			role = "plugins"
		case p.comm == "kube-apiserver":
			role = "admin-apiserver"
		case p.comm == "etcd":
			role = "admin-etcd"
			if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(cmd), datastoreDir) {
				role = "datastore-etcd"
			}
		}
		s.roles[role] += p.cpu
		for _, c := range children[pid] {
			walk(c, underManager || pid == managerPID)
		}
	}
	walk(os.Getpid(), false)

	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		// cpu user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
		for i, v := range strings.Fields(line)[1:] {
			n, _ := strconv.ParseFloat(v, 64)
			if i >= 8 { // guest time is counted in user already
				break
			}
			s.machine += n / 100
			if i != 3 && i != 4 {
				s.machineBusy += n / 100
			}
		}
	}
	return s
}

// cpuFigures prints where the machine's CPU went while the TCPs were provisioned, per TCP and
// by process role, and the rate those figures allow: the machine's cores divided by its busy
// CPU per TCP, the ceiling of this run's rate on this machine.
func cpuFigures(before, after cpuSample, count int) {
	busy, all := after.machineBusy-before.machineBusy, after.machine-before.machine
	if all <= 0 || count == 0 {
		return
	}
	perTCP := func(sec float64) float64 { return sec * 1000 / float64(count) }
	fmt.Printf("metric cpu.machine.busy %.0f %%\n", busy*100/all)
	fmt.Printf("metric cpu.per-tcp.machine %.1f ms\n", perTCP(busy))
	roles := make([]string, 0, len(after.roles))
	for r := range after.roles {
		roles = append(roles, r)
	}
	sort.Slice(roles, func(i, j int) bool {
		return after.roles[roles[i]]-before.roles[roles[i]] > after.roles[roles[j]]-before.roles[roles[j]]
	})
	var parts []string
	for _, r := range roles {
		d := after.roles[r] - before.roles[r]
		fmt.Printf("metric cpu.per-tcp.%s %.1f ms\n", r, perTCP(d))
		parts = append(parts, fmt.Sprintf("%s %.0f", r, perTCP(d)))
	}
	cores := float64(runtime.NumCPU())
	fmt.Printf("CPU per TCP while provisioning: %.0f ms of the machine (%.0f%% busy of %.0f cores), of which (ms) %s; at that cost %.0f cores allow at most %.1f TCP/s\n",
		perTCP(busy), busy*100/all, cores, strings.Join(parts, ", "), cores, cores*float64(count)/busy)
}

// profileAPIServer takes a CPU profile of the admin apiserver (its /debug/pprof, on by default)
// over the next d and writes it to path, in the background; the channel gives its error once
// written. An empty path takes none.
func profileAPIServer(ctx context.Context, cfg *rest.Config, path string, d time.Duration) <-chan error {
	done := make(chan error, 1)
	if path == "" {
		done <- nil
		return done
	}
	go func() {
		cs, err := kubernetes.NewForConfig(rest.CopyConfig(cfg))
		if err != nil {
			done <- err
			return
		}
		raw, err := cs.RESTClient().Get().AbsPath("/debug/pprof/profile").
			Param("seconds", strconv.Itoa(int(d.Seconds()))).Timeout(d + time.Minute).DoRaw(ctx)
		if err != nil {
			done <- fmt.Errorf("admin apiserver CPU profile: %w", err)
			return
		}
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			done <- err
			return
		}
		fmt.Fprintf(os.Stderr, "provisioning: the admin apiserver's CPU profile over %s is in %s (go tool pprof %s)\n", d, path, path)
		done <- nil
	}()
	return done
}
