package local_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/metrics/metricstest"
	"github.com/openhcp/kamaji/core/testenv"

	"github.com/openhcp/kamaji/cmd/internal/local"
)

func init() {
	registerPlaneSubtest("a killed plugin is restarted and counted in kamaji_plugin_restarts_total", testPluginRestart)
}

// testPluginRestart SIGKILLs the etcd datastore plugin, a child process of the manager. The
// plugin host notices (its probe loop, or the next use, such as the DataStore's periodic
// check) and counts a restart; the next use starts a new process. The tenants, whose data path
// never goes through the plugin, stay Ready throughout.
func testPluginRestart(t *testing.T, e *e2e) {
	// The chart names a bundled plugin by its bundledPlugins key.
	const plugin, binary, ds = "datastore-etcd", "kamaji-datastore-etcd", "default"
	tenants := []string{"tenant-00", "tenant-01"}
	for _, name := range tenants {
		e.waitStatus(t, name, kamajiv1alpha1.VersionReady)
	}
	manager := e.managerPID(t)
	var old int
	eventually(t, "the etcd plugin to run under the manager", func() error {
		pids := childProcesses(manager, binary)
		if len(pids) != 1 {
			return fmt.Errorf("processes of %s under the manager (pid %d): %v", binary, manager, pids)
		}
		old = pids[0]
		return nil
	})
	before := pluginMetric(t, e, "kamaji_plugin_restarts_total", plugin)
	if err := unix.Kill(old, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %s (pid %d); restarts counted before: %v", binary, old, before)

	// Sampled on every poll: a tenant seen anything but Ready fails the test.
	notReady := map[string]string{}
	sampleTenants := func() {
		for _, name := range tenants {
			tcp := e.tcp(t, name)
			if s := tcp.Status.Kubernetes.Version.Status; s == nil || *s != kamajiv1alpha1.VersionReady {
				notReady[name] = fmt.Sprintf("%v: %+v", ptrString(s), tcp.Status.Conditions)
			}
		}
	}
	eventually(t, "the restart to be counted", func() error {
		sampleTenants()
		if n := pluginMetric(t, e, "kamaji_plugin_restarts_total", plugin); n <= before {
			return fmt.Errorf("kamaji_plugin_restarts_total{plugin=%q} = %v", plugin, n)
		}
		return nil
	})
	eventually(t, "a new etcd plugin process, up and Ready on its DataStore", func() error {
		sampleTenants()
		pids := childProcesses(manager, binary)
		if len(pids) != 1 || pids[0] == old {
			return fmt.Errorf("processes of %s under the manager: %v (killed %d)", binary, pids, old)
		}
		if up := pluginMetric(t, e, "kamaji_plugin_up", plugin); up != 1 {
			return fmt.Errorf("kamaji_plugin_up{plugin=%q} = %v", plugin, up)
		}
		var store kamajiv1alpha1.DataStore
		if err := e.cl.Get(ctx(t), client.ObjectKey{Name: ds}, &store); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(store.Status.Conditions, "Ready"); c == nil || c.Status != "True" || !store.Status.Ready {
			return fmt.Errorf("DataStore %s: ready %v, condition %+v", ds, store.Status.Ready, c)
		}
		return nil
	})
	sampleTenants()
	if len(notReady) > 0 {
		t.Errorf("tenants seen not Ready while the plugin restarted: %v", notReady)
	}
	if _, err := e.kubectlErr("tenant-00", "get", "ns"); err != nil {
		t.Error(err)
	}
}

// pluginMetric is the value of a per-plugin series of the manager's /metrics (-1 when absent).
func pluginMetric(t *testing.T, e *e2e, family, plugin string) float64 {
	t.Helper()
	f, err := metricstest.Scrape(e.managerMetricsURL(t))
	if err != nil {
		t.Fatal(err)
	}
	v, ok := f.Value(family, map[string]string{"plugin": plugin})
	if !ok {
		return -1
	}
	return v
}

// managerPID is the pid of the manager container's process (the process node's container ID
// is local://<pid>).
func (e *e2e) managerPID(t *testing.T) int {
	t.Helper()
	pod, err := local.ManagerPod(ctx(t), e.cs)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range pod.Status.ContainerStatuses {
		if c.Name == "manager" {
			if pid, err := strconv.Atoi(strings.TrimPrefix(c.ContainerID, "local://")); err == nil {
				return pid
			}
			t.Fatalf("container ID %q of the manager is not local://<pid>", c.ContainerID)
		}
	}
	t.Fatalf("pod %s has no manager container status", pod.Name)
	return 0
}

// childProcesses are the pids of the running children of ppid whose executable is named binary.
func childProcesses(ppid int, binary string) []int {
	var out []int
	for _, pid := range testenv.Children(ppid) {
		exe, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
		if filepath.Base(strings.TrimSuffix(exe, " (deleted)")) == binary {
			out = append(out, pid)
		}
	}
	return out
}

// ptrString reads a status that may be unset.
func ptrString[T ~string](p *T) string {
	if p == nil {
		return "<unset>"
	}
	return string(*p)
}
