package local_test

// End to end on a plane whose admin node is a real kubelet with containerd (`kamaji local up
// --node kubelet`): the Node Ready with containerd as its runtime, the admin cluster's CoreDNS
// answering Service names, the manager installed by the chart running in a container under its
// securityContext (uid 65532) with its plugins from image volumes, a tenant Ready whose control
// plane runs from the images built on this machine (konnectivity's server among them), kubectl
// through it, `kubectl logs` of an admin pod through the kubelet and of a pod on the tenant's
// worker through konnectivity, a tenant on the MySQL DataStore with its kine sidecar from the
// kine image, a tenant at another Kubernetes version whose images the node's registry makes on
// their first pull; then down leaves the machine as it was.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/testenv"

	"github.com/openhcp/kamaji/cmd/internal/local"
	"github.com/openhcp/kamaji/cmd/internal/local/node"
)

func TestLocalPlaneKubeletNode(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("the local plane needs root on Linux")
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubectl", "kubelet"} {
		if _, err := testenv.Binary(b); err != nil {
			t.Fatal(err)
		}
	}
	e, dir := newPlaneE2E(t, "datastore-etcd", "datastore-mysql", "addon-coredns", "addon-kubeproxy", "addon-konnectivity")
	ensureKine(t)
	mysqlRootDB(t).Close() // the machine's MariaDB answers

	e.takePlaneSlot()
	before := snapshot(t)
	downDone := false
	t.Cleanup(func() {
		if !downDone {
			out, err := e.run(2*time.Minute, "local", "down", "--state-dir", e.state)
			if err != nil {
				t.Errorf("kamaji local down: %v\n%s", err, out)
			}
		}
	})
	start := time.Now()
	out, err := e.run(8*time.Minute, "local", "up", "--state-dir", e.state, "--bin-dir", dir, "--node", "kubelet", "--tenants", "1", "--workers", "1", "--datastores", "mysql")
	if err != nil {
		t.Fatalf("kamaji local up --node kubelet: %v\n%s", err, out)
	}
	t.Logf("kamaji local up --node kubelet (%.1fs):\n%s", time.Since(start).Seconds(), out)
	e.connectAdmin(t)

	t.Run("the node is a kubelet with containerd, Ready", func(t *testing.T) {
		n, err := e.cs.CoreV1().Nodes().Get(ctx(t), "local-node", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if info := n.Status.NodeInfo; !strings.HasPrefix(info.ContainerRuntimeVersion, "containerd://"+strings.TrimPrefix(local.ContainerdVersion, "v")) ||
			info.KubeletVersion != local.KubeVersion {
			t.Errorf("runtime %q, kubelet %q", info.ContainerRuntimeVersion, info.KubeletVersion)
		}
		if !conditionTrue(nodeConditions(n), "Ready") {
			t.Errorf("conditions %v", n.Status.Conditions)
		}
	})

	t.Run("the manager runs in a container as its chart says, plugins from image volumes", func(t *testing.T) {
		pod, err := local.ManagerPod(ctx(t), e.cs)
		if err != nil {
			t.Fatal(err)
		}
		imageVolumes := 0
		for _, v := range pod.Spec.Volumes {
			if v.Image != nil {
				imageVolumes++
			}
		}
		if imageVolumes == 0 {
			t.Errorf("no image volume in the manager pod: %v", pod.Spec.Volumes)
		}
		for _, c := range pod.Status.ContainerStatuses {
			if !strings.HasPrefix(c.ContainerID, "containerd://") || !c.Ready {
				t.Errorf("container %s: id %s, ready %v", c.Name, c.ContainerID, c.Ready)
			}
		}
		pids := processesIn("kamaji-admin-node", "kamaji", "manager")
		if len(pids) != 1 {
			t.Fatalf("manager processes in the node's cgroup: %v", pids)
		}
		status, _ := os.ReadFile("/proc/" + strconv.Itoa(pids[0]) + "/status")
		if !strings.Contains(string(status), "\nUid:\t65532\t65532\t65532\t65532\n") {
			t.Errorf("the manager's uids:\n%s", status)
		}
		// The kubelet serves the apiserver's `kubectl logs`.
		logs, err := exec.Command(e.kubectl, "--kubeconfig", filepath.Join(e.state, "admin.kubeconfig"), "-n", local.ManagerNamespace,
			"logs", pod.Name, "-c", "manager", "--tail=5").CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(logs))) == 0 {
			t.Errorf("kubectl logs %s: %v: %s", pod.Name, err, logs)
		}
	})

	t.Run("the admin cluster's DNS resolves Service names", func(t *testing.T) {
		svc, err := e.cs.CoreV1().Services("default").Get(ctx(t), "tenant-00", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, "10.96.0.10:53")
		}}
		addrs, err := r.LookupHost(ctx(t), "tenant-00.default.svc.cluster.local")
		if err != nil || !slices.Equal(addrs, []string{svc.Spec.ClusterIP}) {
			t.Errorf("tenant-00.default.svc.cluster.local: %v %v, want %s", addrs, err, svc.Spec.ClusterIP)
		}
	})

	t.Run("the tenant runs from the images built here and answers kubectl", func(t *testing.T) {
		tcp := e.tcp(t, "tenant-00")
		if s := tcp.Status.Kubernetes.Version.Status; s == nil || *s != kamajiv1alpha1.VersionReady {
			t.Fatalf("status %v", s)
		}
		pods := e.tenantPods(t, "tenant-00")
		if len(pods) != 1 || !podReady(&pods[0]) {
			t.Fatalf("pods %v", podSummary(pods))
		}
		for _, c := range pods[0].Status.ContainerStatuses {
			if !strings.HasPrefix(c.ContainerID, "containerd://") || c.RestartCount > 0 {
				t.Errorf("container %s: id %s, restarts %d", c.Name, c.ContainerID, c.RestartCount)
			}
		}
		out := e.kubectlT(t, "tenant-00", "get", "ns", "-o", "name")
		if !strings.Contains(out, "namespace/kube-system") {
			t.Errorf("get ns: %s", out)
		}
	})

	t.Run("the tenant's worker runs its addons, reached through konnectivity", func(t *testing.T) {
		// Every replica: the logs below are those of every pod the label selects, and one still
		// being created has none yet.
		eventually(t, "the tenant's CoreDNS pods all Running on worker-0", func() error {
			out, err := e.kubectlErr("tenant-00", "-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns",
				"-o", "jsonpath={range .items[*]}{.spec.nodeName} {.status.phase}{\"\\n\"}{end}")
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if err != nil || out == "" || slices.ContainsFunc(lines, func(l string) bool { return l != "worker-0 Running" }) {
				return fmt.Errorf("%v: %q", err, out)
			}
			return nil
		})
		// The node is unreachable from the admin cluster's pods but through the agent's tunnel.
		// The agent may start after CoreDNS: until it has dialled the server, the apiserver
		// answers "No agent available", which is the only error waited out here.
		var logsErr error
		eventually(t, "the konnectivity agent's tunnel", func() error {
			_, logsErr = e.kubectlErr("tenant-00", "-n", "kube-system", "logs", "-l", "k8s-app=kube-dns", "--tail=1")
			if logsErr != nil && strings.Contains(logsErr.Error(), "No agent available") {
				return logsErr
			}
			return nil
		})
		if logsErr != nil {
			t.Errorf("kubectl logs of the tenant's CoreDNS: %v", logsErr)
		}
	})

	t.Run("a tenant on the MySQL DataStore runs kine from its image", func(t *testing.T) {
		const name = "kubelet-kine"
		tcp := local.SampleTCP(name, "default")
		tcp.Spec.DataStore = local.DataStoreMySQL
		if err := e.cl.Create(ctx(t), tcp); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = e.cl.Delete(context.Background(), tcp) }()
		e.waitKineReady(t, name)
		pods := e.tenantPods(t, name)
		if len(pods) != 1 || !podReady(&pods[0]) {
			t.Fatalf("pods %v", podSummary(pods))
		}
		found := false
		for _, c := range pods[0].Status.ContainerStatuses {
			if c.Name == "kine" {
				found = strings.HasPrefix(c.ContainerID, "containerd://") && c.Ready && strings.HasSuffix(c.Image, local.KineImage)
			}
		}
		if !found {
			t.Errorf("no ready kine container from %s: %+v", local.KineImage, pods[0].Status.ContainerStatuses)
		}
		e.writeKubeconfig(t, name)
		if out := e.kubectlT(t, name, "get", "ns", "-o", "name"); !strings.Contains(out, "namespace/kube-system") {
			t.Errorf("get ns: %s", out)
		}
	})

	t.Run("a tenant at another version runs from images made on their first pull", func(t *testing.T) {
		ensurePreviousBins(t, previousKubeVersion)
		index := filepath.Join(e.state, "registry", "index.json")
		ref := "registry.k8s.io/kube-apiserver:" + previousKubeVersion
		if data, err := os.ReadFile(index); err != nil || strings.Contains(string(data), ref) {
			t.Fatalf("%s made before any pull (%v)", ref, err)
		}
		const name = "kubelet-older"
		tcp := local.SampleTCP(name, "default")
		tcp.Spec.Kubernetes.Version = previousKubeVersion
		if err := e.cl.Create(ctx(t), tcp); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = e.cl.Delete(context.Background(), tcp) }()
		e.waitStatus(t, name, kamajiv1alpha1.VersionReady)
		pods := e.tenantPods(t, name)
		if len(pods) != 1 || !podReady(&pods[0]) {
			t.Fatalf("pods %v", podSummary(pods))
		}
		for _, c := range pods[0].Status.ContainerStatuses {
			if strings.HasPrefix(c.Name, "kube-") && (!strings.HasPrefix(c.ContainerID, "containerd://") || !strings.HasSuffix(c.Image, ":"+previousKubeVersion)) {
				t.Errorf("container %s: id %s, image %s", c.Name, c.ContainerID, c.Image)
			}
		}
		if data, _ := os.ReadFile(index); !strings.Contains(string(data), ref) {
			t.Errorf("%s is not in the registry's index", ref)
		}
		e.writeKubeconfig(t, name)
		if out := e.kubectlT(t, name, "version", "-o", "json"); !strings.Contains(out, `"gitVersion": "`+previousKubeVersion+`"`) {
			t.Errorf("version: %s", out)
		}
	})

	t.Run("down leaves the machine as before", func(t *testing.T) {
		downDone = true
		e.downAsBefore(t, before)
		if pids := processesIn("kamaji-admin-node", "", ""); len(pids) > 0 {
			var what []string
			for _, pid := range pids {
				stat, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
				what = append(what, strings.TrimSpace(string(stat)))
			}
			t.Errorf("processes of the node still run:\n%s", strings.Join(what, "\n"))
		}
		if pids := node.MarkedProcesses(e.state, false); len(pids) > 0 {
			t.Errorf("processes of the plane still run: %v", pids)
		}
		if _, err := os.Stat(e.state); !os.IsNotExist(err) {
			t.Errorf("state folder still there: %v", err)
		}
	})
}

// processesIn are the live processes whose cgroup path contains cgroup (and, when set, whose
// executable is named exe and whose command line holds arg). A zombie, killed and not yet
// reaped by the machine's init, still names its cgroup: it is left out.
func processesIn(cgroup, exe, arg string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		cg, _ := os.ReadFile("/proc/" + ent.Name() + "/cgroup")
		if !strings.Contains(string(cg), "/"+cgroup+"/") {
			continue
		}
		// /proc/<pid>/stat: "pid (comm) state ...", comm may hold spaces.
		stat, _ := os.ReadFile("/proc/" + ent.Name() + "/stat")
		if i := strings.LastIndexByte(string(stat), ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
			continue
		}
		if exe != "" {
			path, _ := os.Readlink("/proc/" + ent.Name() + "/exe")
			cmdline, _ := os.ReadFile("/proc/" + ent.Name() + "/cmdline")
			if filepath.Base(path) != exe || !slices.Contains(strings.Split(string(cmdline), "\x00"), arg) {
				continue
			}
		}
		out = append(out, pid)
	}
	return out
}

func nodeConditions(n *corev1.Node) []metav1.Condition {
	var out []metav1.Condition
	for _, c := range n.Status.Conditions {
		out = append(out, metav1.Condition{Type: string(c.Type), Status: metav1.ConditionStatus(c.Status)})
	}
	return out
}
