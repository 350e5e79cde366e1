package worker

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The host side of a worker: its network namespace and veth, the forwarding rules, the host
// paths its mount namespace covers, and the kubelet's cgroup root. Setup is idempotent;
// Teardown removes what Setup made and every process left in the worker's cgroups.

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// forwardRules let the worker's traffic through the host's FORWARD chain (kube-proxy's own
// rules would drop nothing here, but a host with a DROP policy would).
// With BlockedFrom, a first rule rejects that range's new connections to the node (not a
// route: replies to the node's own connections also go from there to the node).
func (c Config) forwardRules() [][]string {
	rules := [][]string{
		{"FORWARD", "-i", c.HostVeth(), "-j", "ACCEPT"},
		{"FORWARD", "-o", c.HostVeth(), "-j", "ACCEPT"},
	}
	if c.BlockedFrom != "" {
		rules = append(rules, []string{"FORWARD", "-s", c.BlockedFrom, "-d", c.Subnet(), "-m", "conntrack", "--ctstate", "NEW",
			"-j", "REJECT", "--reject-with", "icmp-host-unreachable"})
	}
	return rules
}

// Setup makes the worker's namespace, link, rules, host paths and cgroups.
func (c Config) Setup() error {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	if _, err := os.Stat("/run/netns/" + c.NetNS()); err != nil && !c.HostNetwork {
		inNS := func(args ...string) error { return run(append([]string{"ip", "netns", "exec", c.NetNS()}, args...)...) }
		for _, step := range []func() error{
			func() error { return run("ip", "netns", "add", c.NetNS()) },
			func() error { _ = run("ip", "link", "del", c.HostVeth()); return nil },
			func() error {
				return run("ip", "link", "add", c.HostVeth(), "type", "veth", "peer", "name", c.NodeVeth())
			},
			func() error { return run("ip", "link", "set", c.NodeVeth(), "netns", c.NetNS()) },
			func() error { return run("ip", "addr", "add", c.HostIP()+"/30", "dev", c.HostVeth()) },
			func() error { return run("ip", "link", "set", c.HostVeth(), "up") },
			func() error { return inNS("ip", "link", "set", "lo", "up") },
			func() error { return inNS("ip", "addr", "add", c.NodeIP()+"/30", "dev", c.NodeVeth()) },
			func() error { return inNS("ip", "link", "set", c.NodeVeth(), "up") },
			func() error { return inNS("ip", "route", "add", "default", "via", c.HostIP()) },
		} {
			if err := step(); err != nil {
				return fmt.Errorf("worker %s network: %w", c.Name, err)
			}
		}
	}
	for _, r := range c.forwardRules() {
		if c.HostNetwork {
			break
		}
		if exec.Command("iptables", append([]string{"-C"}, r...)...).Run() != nil {
			if err := run(append([]string{"iptables", "-I"}, r...)...); err != nil {
				return err
			}
		}
	}
	// The host paths must exist for the worker to mount its folders on them; those made here
	// are recorded, and removed by Teardown (they stay empty on the host).
	var made []string
	for _, p := range HostPaths {
		if _, err := os.Stat(p); err == nil {
			continue
		}
		for d := p; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Dir(d)); err == nil {
				made = append(made, d)
				break
			}
		}
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
	}
	if len(made) > 0 {
		f, err := os.OpenFile(filepath.Join(filepath.Dir(c.Dir), "host-paths-made"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		fmt.Fprintln(f, strings.Join(made, "\n"))
		f.Close()
	}
	return c.makeCgroups()
}

// cgroupHierarchies are the mounted cgroup hierarchies (v1 controllers, named ones, and the
// unified one of a hybrid host).
func cgroupHierarchies() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, x := range fields {
			if x == "-" && i+1 < len(fields) && (fields[i+1] == "cgroup" || fields[i+1] == "cgroup2") {
				out = append(out, fields[4])
			}
		}
	}
	return out
}

// makeCgroups makes the kubelet's cgroup root in every hierarchy; a cpuset one gets its
// parent's CPUs and memory nodes, without which nothing can join it.
func (c Config) makeCgroups() error {
	for _, h := range cgroupHierarchies() {
		d := filepath.Join(h, c.Cgroup())
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", d, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if v, err := os.ReadFile(filepath.Join(h, f)); err == nil {
				if cur, _ := os.ReadFile(filepath.Join(d, f)); strings.TrimSpace(string(cur)) == "" {
					if err := os.WriteFile(filepath.Join(d, f), v, 0o644); err != nil {
						return fmt.Errorf("cgroup %s: %w", filepath.Join(d, f), err)
					}
				}
			}
		}
	}
	return nil
}

// cgroupPIDs lists every process in the cgroup tree under each hierarchy's dir.
func cgroupPIDs(rel string) []int {
	seen := map[int]bool{}
	for _, h := range cgroupHierarchies() {
		_ = filepath.WalkDir(filepath.Join(h, rel), func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			data, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			for _, l := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(l); err == nil {
					seen[pid] = true
				}
			}
			return nil
		})
	}
	var out []int
	for pid := range seen {
		out = append(out, pid)
	}
	sort.Ints(out)
	return out
}

// PIDs are the processes in the node's cgroups: on the admin node, its runtime and containers.
func (c Config) PIDs() []int { return cgroupPIDs(c.Cgroup()) }

// removeCgroupTree removes the cgroup folders under each hierarchy's rel, deepest first.
func removeCgroupTree(rel string) error {
	var errs []error
	for _, h := range cgroupHierarchies() {
		var dirs []string
		_ = filepath.WalkDir(filepath.Join(h, rel), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := os.Remove(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Workers lists the indexes of the workers whose namespace or cgroups exist on this host.
func Workers() []int {
	seen := map[int]bool{}
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range entries {
			if n, ok := strings.CutPrefix(e.Name(), NetNSPrefix); ok {
				if i, err := strconv.Atoi(n); err == nil {
					seen[i] = true
				}
			}
		}
	}
	for _, h := range cgroupHierarchies() {
		entries, _ := os.ReadDir(h)
		for _, e := range entries {
			if n, ok := strings.CutPrefix(e.Name(), CgroupPrefix); ok && e.IsDir() {
				if i, err := strconv.Atoi(n); err == nil {
					seen[i] = true
				}
			}
		}
	}
	var out []int
	for i := range seen {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

// Teardown kills what is left of the worker (its supervisor is stopped first by the plane):
// every process in its cgroups and network namespace; then removes its cgroups, namespace,
// link and rules. Its folder goes with the plane's state.
func (c Config) Teardown() error {
	var errs []error
	kill := func() int {
		pids := cgroupPIDs(c.Cgroup())
		if c.HostNetwork {
			// Every process of the node is in its cgroup (admin.go); the host's namespace is not its.
		} else if out, err := exec.Command("ip", "netns", "pids", c.NetNS()).Output(); err == nil {
			for _, l := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(l); err == nil {
					pids = append(pids, pid)
				}
			}
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		return len(pids)
	}
	deadline := time.Now().Add(15 * time.Second)
	for kill() > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := kill(); n > 0 {
		errs = append(errs, fmt.Errorf("worker %s: %d processes survived SIGKILL", c.Name, n))
	}
	if err := removeCgroupTree(c.Cgroup()); err != nil {
		errs = append(errs, err)
	}
	if c.HostNetwork {
		return errors.Join(errs...)
	}
	if _, err := os.Stat("/run/netns/" + c.NetNS()); err == nil {
		if err := run("ip", "netns", "del", c.NetNS()); err != nil {
			errs = append(errs, err)
		}
	}
	_ = run("ip", "link", "del", c.HostVeth()) // gone with the namespace's end, usually
	for _, r := range c.forwardRules() {
		for exec.Command("iptables", append([]string{"-C"}, r...)...).Run() == nil {
			if err := run(append([]string{"iptables", "-D"}, r...)...); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	return errors.Join(errs...)
}

// RemoveHostPaths removes the host paths Setup made (recorded in workersDir), when empty.
func RemoveHostPaths(workersDir string) error {
	data, err := os.ReadFile(filepath.Join(workersDir, "host-paths-made"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	lines := strings.Fields(string(data))
	// Deepest first: /var/log/pods before /var/log.
	sort.Slice(lines, func(i, j int) bool { return len(lines[i]) > len(lines[j]) })
	var errs []error
	for _, p := range lines {
		if err := removeEmptyTree(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeEmptyTree removes p and its subfolders if they hold no file.
func removeEmptyTree(p string) error {
	var dirs []string
	files := 0
	_ = filepath.WalkDir(p, func(q string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			dirs = append(dirs, q)
		} else {
			files++
		}
		return nil
	})
	if files > 0 {
		return fmt.Errorf("%s: not removed, it holds %d files", p, files)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Remove(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
