package local_test

// End-to-end tests on the local plane: `kamaji local up --datastores all` as a user runs it
// (the real binary, the real datastore and addon plugins), then what a user would check with
// kubectl, then `kamaji local down` and a comparison of the machine (and of its database
// servers) with its state before. That one plane serves all of TestLocalPlane's subtests,
// the kine ones included (an up with every DataStore took 45 s here): subtests_e2e_test.go;
// the kubelet node has a plane of its own (adminnode_e2e_test.go). Root on Linux only (skipped
// otherwise); failing when a plane already runs here (one per machine: the bridge, the ports
// and kube-proxy's chains are the host's).

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"k8s.io/apimachinery/pkg/util/wait"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sys/unix"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/manager"
	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/core/testenv"

	"github.com/openhcp/kamaji/cmd/internal/local"
	"github.com/openhcp/kamaji/cmd/internal/local/node"
	"github.com/openhcp/kamaji/cmd/internal/local/worker"
)

type e2e struct {
	t       *testing.T
	kamaji  string
	state   string
	kubectl string
	cs      kubernetes.Interface
	cl      client.Client
	// plugins: the plugins the plane's chart installs (datastore-etcd, addon-coredns, ...).
	plugins []string
	// kineTenants: every tenant made on a kine DataStore, which down must have dropped.
	kineTenants []kineTenantNames
}

func TestLocalPlane(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("the local plane needs root on Linux")
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubectl"} {
		if _, err := testenv.Binary(b); err != nil {
			t.Fatal(err)
		}
	}
	e, dir := newPlaneE2E(t, "datastore-etcd", "datastore-mysql", "datastore-postgres", "datastore-nats", "addon-coredns", "addon-kubeproxy", "addon-konnectivity")
	ensureKine(t)
	// The machine's servers, the kine DataStores' backends, must answer before anything starts.
	mysqlRootDB(t).Close()
	postgresRootDB(t).Close()

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

	out, err := e.run(8*time.Minute, "local", "up", "--state-dir", e.state, "--bin-dir", dir, "--tenants", "2", "--workers", "1", "--datastores", "all")
	if err != nil {
		t.Fatalf("kamaji local up: %v\n%s", err, out)
	}
	t.Logf("kamaji local up:\n%s", out)
	line := e.kubectl + " --kubeconfig " + filepath.Join(e.state, "tenant-00.kubeconfig") + " get ns"
	if !strings.Contains(out, line) {
		t.Fatalf("up did not print %q", line)
	}
	e.connectAdmin(t)

	t.Run("running up again is harmless", func(t *testing.T) {
		// No --datastores: the plane keeps the DataStores it has.
		out, err := e.run(3*time.Minute, "local", "up", "--state-dir", e.state, "--bin-dir", dir, "--tenants", "2", "--workers", "1")
		if err != nil || strings.Count(out, "already running") < 8 || !strings.Contains(out, "DataStore nats") || !strings.Contains(out, "DataStore etcd-2") {
			t.Fatalf("second up: %v\n%s", err, out)
		}
	})

	t.Run("the TCP is Ready on the etcd DataStore", func(t *testing.T) {
		tcp := e.tcp(t, "tenant-00")
		if s := tcp.Status.Kubernetes.Version.Status; s == nil || *s != kamajiv1alpha1.VersionReady {
			t.Fatalf("status %v", s)
		}
		if st := tcp.Status.Storage; st.Driver != "etcd" || st.DataStoreName != "default" {
			t.Errorf("storage %+v", st)
		}
		pods := e.tenantPods(t, "tenant-00")
		if len(pods) != 1 || pods[0].Status.Phase != corev1.PodRunning || !podReady(&pods[0]) || !strings.HasPrefix(pods[0].Status.PodIP, "10.244.") {
			t.Fatalf("pods %v", podSummary(pods))
		}
	})

	t.Run("kubectl lists namespaces, creates and reads back a ConfigMap", func(t *testing.T) {
		out := e.kubectlT(t, "tenant-00", "get", "ns", "-o", "name")
		for _, ns := range []string{"namespace/default", "namespace/kube-system"} {
			if !strings.Contains(out, ns) {
				t.Errorf("get ns: %s", out)
			}
		}
		e.kubectlT(t, "tenant-00", "create", "configmap", "e2e", "--from-literal=greeting=hello")
		if got := e.kubectlT(t, "tenant-00", "get", "configmap", "e2e", "-o", "jsonpath={.data.greeting}"); got != "hello" {
			t.Errorf("read back %q", got)
		}
	})

	t.Run("the admin kubeconfigs from the Secret authenticate", func(t *testing.T) {
		s, err := e.cs.CoreV1().Secrets("default").Get(ctx(t), "tenant-00-admin-kubeconfig", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for key, group := range map[string]string{"admin.conf": "kubeadm:cluster-admins", "super-admin.conf": "system:masters"} {
			path := filepath.Join(t.TempDir(), key)
			if err := os.WriteFile(path, s.Data[key], 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(e.kubectl, "--kubeconfig", path, "auth", "whoami", "-o", "jsonpath={.status.userInfo.groups}").CombinedOutput()
			if err != nil || !strings.Contains(string(out), group) {
				t.Errorf("%s: whoami %v: %s", key, err, out)
			}
		}
	})

	t.Run("tenants are isolated", func(t *testing.T) {
		// tenant-00's client certificate, sent to tenant-01's endpoint, is refused.
		own, err := clientcmd.BuildConfigFromFlags("", filepath.Join(e.state, "tenant-00.kubeconfig"))
		if err != nil {
			t.Fatal(err)
		}
		other := rest.CopyConfig(own)
		other.Host = "https://" + e.tcp(t, "tenant-01").Status.ControlPlaneEndpoint
		other.TLSClientConfig.CAData, other.TLSClientConfig.Insecure = nil, true
		_, err = kubernetes.NewForConfigOrDie(other).CoreV1().Namespaces().List(ctx(t), metav1.ListOptions{})
		if !apierrors.IsUnauthorized(err) {
			t.Fatalf("tenant-00's credentials against tenant-01: %v, want Unauthorized", err)
		}
		if _, err := kubernetes.NewForConfigOrDie(own).CoreV1().Namespaces().List(ctx(t), metav1.ListOptions{}); err != nil {
			t.Fatalf("tenant-00's credentials against tenant-00: %v", err)
		}
	})

	t.Run("ClusterIP and NodePort work from the host and from a pod", func(t *testing.T) {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-nodeport", Namespace: "default"},
			Spec: corev1.ServiceSpec{
				Type:     corev1.ServiceTypeNodePort,
				Selector: map[string]string{"kamaji.clastix.io/name": "tenant-00"},
				Ports:    []corev1.ServicePort{{Port: 6443, TargetPort: intstr.FromInt32(6443)}},
			},
		}
		svc, err := e.cs.CoreV1().Services("default").Create(ctx(t), svc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer e.cs.CoreV1().Services("default").Delete(context.Background(), svc.Name, metav1.DeleteOptions{})
		np := strconv.Itoa(int(svc.Spec.Ports[0].NodePort))
		targets := []string{
			net.JoinHostPort(svc.Spec.ClusterIP, "6443"),
			net.JoinHostPort("10.244.0.1", np),
			net.JoinHostPort("127.0.0.1", np),
			e.tcp(t, "tenant-00").Status.ControlPlaneEndpoint,
		}
		other := e.tenantPods(t, "tenant-01")
		if len(other) != 1 {
			t.Fatalf("tenant-01 pods: %v", podSummary(other))
		}
		netns, _ := node.SandboxNames(string(other[0].UID))
		self := e.tenantPods(t, "tenant-00")
		selfNS, _ := node.SandboxNames(string(self[0].UID))
		for _, target := range targets {
			eventually(t, "GET /version at "+target+" from the host", func() error { return getVersion("", target) })
			if !strings.HasPrefix(target, "127.") { // a pod's loopback is its own
				eventually(t, "GET /version at "+target+" from tenant-01's pod", func() error { return getVersion(netns, target) })
			}
		}
		// A pod reaching itself through its Service (hairpin).
		eventually(t, "tenant-00's pod reaching its own Service", func() error { return getVersion(selfNS, targets[0]) })
	})

	t.Run("an unknown image is reported on the pod, with an event naming it", func(t *testing.T) {
		const image = "example.invalid/nothing:1"
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-unknown-image", Namespace: "default"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}, TerminationGracePeriodSeconds: ptrTo[int64](1)},
		}
		if _, err := e.cs.CoreV1().Pods("default").Create(ctx(t), pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the ImagesResolved condition naming the image", func() error {
			p, err := e.cs.CoreV1().Pods("default").Get(ctx(t), pod.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, c := range p.Status.Conditions {
				if c.Type == node.ConditionImagesResolved && c.Status == corev1.ConditionFalse && strings.Contains(c.Message, image) {
					return nil
				}
			}
			return fmt.Errorf("conditions %v", p.Status.Conditions)
		})
		eventually(t, "an UnknownImage event naming the image", func() error {
			evs, err := e.cs.CoreV1().Events("default").List(ctx(t), metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod.Name})
			if err != nil {
				return err
			}
			for _, ev := range evs.Items {
				if ev.Reason == "UnknownImage" && strings.Contains(ev.Message, image) {
					return nil
				}
			}
			return fmt.Errorf("%d events, none UnknownImage", len(evs.Items))
		})
		if err := e.cs.CoreV1().Pods("default").Delete(ctx(t), pod.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the pod to be deleted", func() error {
			_, err := e.cs.CoreV1().Pods("default").Get(ctx(t), pod.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("still there: %v", err)
		})
	})

	t.Run("killing the apiserver process leads to recovery", func(t *testing.T) {
		pod := e.tenantPods(t, "tenant-00")[0]
		var pid, restarts int
		for _, cs := range pod.Status.ContainerStatuses {
			if cs.Name == "kube-apiserver" {
				pid, _ = strconv.Atoi(strings.TrimPrefix(cs.ContainerID, "local://"))
				restarts = int(cs.RestartCount)
			}
		}
		if pid == 0 {
			t.Fatalf("no kube-apiserver container id in %v", pod.Status.ContainerStatuses)
		}
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); filepath.Base(exe) != "kube-apiserver" {
			t.Fatalf("process %d is %q, not kube-apiserver", pid, exe)
		}
		if err := unix.Kill(pid, unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the container restarted and the pod Ready", func() error {
			p, err := e.cs.CoreV1().Pods("default").Get(ctx(t), pod.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, cs := range p.Status.ContainerStatuses {
				if cs.Name == "kube-apiserver" && int(cs.RestartCount) > restarts && cs.Ready && podReady(p) {
					return nil
				}
			}
			return fmt.Errorf("%v", podSummary([]corev1.Pod{*p}))
		})
		eventually(t, "kubectl to answer again", func() error {
			_, err := e.kubectlErr("tenant-00", "get", "configmap", "e2e")
			return err
		})
	})

	t.Run("sleep to zero and back", func(t *testing.T) {
		e.scale(t, "tenant-01", 0)
		e.waitStatus(t, "tenant-01", kamajiv1alpha1.VersionSleeping)
		eventually(t, "tenant-01's pods to be gone", func() error {
			if pods := e.tenantPods(t, "tenant-01"); len(pods) > 0 {
				return fmt.Errorf("pods %v", podSummary(pods))
			}
			return nil
		})
		e.scale(t, "tenant-01", 1)
		e.waitStatus(t, "tenant-01", kamajiv1alpha1.VersionReady)
		eventually(t, "kubectl against tenant-01", func() error {
			_, err := e.kubectlErr("tenant-01", "get", "ns")
			return err
		})
	})

	e.runPlaneSubtests(t) // subtests_e2e_test.go: upgrade, pause and resume...

	t.Run("deleting a TCP removes its pods and its datastore slice", func(t *testing.T) {
		tcp := e.tcp(t, "tenant-01")
		etcd := e.etcd(t)
		prefix := "/" + tcp.Spec.DataStoreSchema + "/"
		if resp, err := etcd.Get(ctx(t), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || resp.Count == 0 {
			t.Fatalf("the tenant's keys under %s before deletion: %v %v", prefix, resp, err)
		}
		if err := e.cl.Delete(ctx(t), tcp); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the TCP, its pods and its keys to be gone", func() error {
			err := e.cl.Get(ctx(t), client.ObjectKeyFromObject(tcp), &kamajiv1alpha1.TenantControlPlane{})
			if !apierrors.IsNotFound(err) {
				return fmt.Errorf("TCP still there: %v", err)
			}
			if pods := e.tenantPods(t, "tenant-01"); len(pods) > 0 {
				return fmt.Errorf("pods %v", podSummary(pods))
			}
			resp, err := etcd.Get(ctx(t), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil || resp.Count > 0 {
				return fmt.Errorf("keys under %s: %v %v", prefix, resp, err)
			}
			if _, err := etcd.UserGet(ctx(t), tcp.Spec.DataStoreUsername); err == nil {
				return fmt.Errorf("etcd user %s still there", tcp.Spec.DataStoreUsername)
			}
			return nil
		})
	})

	t.Run("down leaves the machine and its database servers as before", func(t *testing.T) {
		e.kineBeforeDown(t)
		downDone = true
		e.downAsBefore(t, before)
		e.kineAfterDown(t)
		if pids := node.MarkedProcesses(e.state, false); len(pids) > 0 {
			t.Errorf("processes of the plane still run: %v", pids)
		}
		if _, err := os.Stat(e.state); !os.IsNotExist(err) {
			t.Errorf("state folder still there: %v", err)
		}
		if _, err := os.Stat(local.ActiveFile); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", local.ActiveFile, err)
		}
	})
}

func ptrTo[T any](v T) *T { return &v }

// dialIn opens a TCP connection from a network namespace ("" for the host's).
func dialIn(netns, target string, timeout time.Duration) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		if netns != "" {
			// Never unlocked: the thread, now in the pod's namespace, ends with the goroutine.
			runtime.LockOSThread()
			fd, err := unix.Open("/run/netns/"+netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				ch <- result{err: err}
				return
			}
			defer unix.Close(fd)
			if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
				ch <- result{err: err}
				return
			}
		}
		c, err := net.DialTimeout("tcp", target, timeout)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.conn, r.err
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// eventually polls fn (every 200 ms, up to 2 minutes) until it answers nil.
func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	var err error
	if wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		err = fn()
		return err == nil, nil
	}) == nil {
		return
	}
	t.Fatalf("timed out waiting for %s: %v", what, err)
}

// downAsBefore runs kamaji local down and checks that the machine's paths, namespaces, links,
// mounts, rules and sysctls are as in before (a snapshot taken ahead of up).
func (e *e2e) downAsBefore(t *testing.T, before map[string][]string) {
	t.Helper()
	out, err := e.run(2*time.Minute, "local", "down", "--state-dir", e.state)
	if err != nil {
		t.Fatalf("kamaji local down: %v\n%s", err, out)
	}
	after := snapshot(t)
	for _, k := range []string{"paths", "netns", "links", "mounts", "iptables", "ip6tables", "nft", "sysctls"} {
		if b, a := before[k], after[k]; !slices.Equal(b, a) {
			t.Errorf("%s differs after down:\nbefore: %v\nafter:  %v", k, b, a)
		}
	}
}

// goBuild runs `go build args...` in dir (this package's folder when empty) with make's
// settings, -buildvcs=false added for a run by hand, and env; the test fails on a failed build.
func goBuild(t *testing.T, dir string, env []string, args ...string) {
	t.Helper()
	build := exec.Command("go", append([]string{"build"}, args...)...)
	build.Dir = dir
	build.Env = append(append(os.Environ(), "GOFLAGS="+os.Getenv("GOFLAGS")+" -buildvcs=false"), env...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newPlaneE2E builds, into a folder of the test, what a plane of its own runs: kamaji, kamaji-pause
// (the kubelet nodes' pod sandbox) and the plugins named (datastore-<x> or addon-<x>).
func newPlaneE2E(t *testing.T, plugins ...string) (*e2e, string) {
	t.Helper()
	dir := t.TempDir()
	e := &e2e{t: t, kamaji: filepath.Join(dir, "kamaji"), state: filepath.Join(dir, "state"), plugins: plugins}
	e.kubectl, _ = testenv.Binary("kubectl")
	goBuild(t, "", nil, "-o", e.kamaji, "../../kamaji")
	goBuild(t, "", []string{"CGO_ENABLED=0"}, "-ldflags", "-s -w", "-o", filepath.Join(dir, "kamaji-pause"), "../../pause")
	for _, p := range plugins {
		kind := settings.KindDataStore
		if strings.HasPrefix(p, "addon-") {
			kind = settings.KindAddon
		}
		if _, err := testenv.BuildPlugin(dir, p, kind); err != nil {
			t.Fatal(err)
		}
	}
	return e, dir
}

// connectAdmin makes the test's clients of the plane's admin cluster, once up has written its
// kubeconfig.
func (e *e2e) connectAdmin(t *testing.T) {
	t.Helper()
	ctrllog.SetLogger(logr.Discard())
	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(e.state, "admin.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	e.cs = kubernetes.NewForConfigOrDie(rc)
	if e.cl, err = client.New(rc, client.Options{Scheme: manager.Scheme()}); err != nil {
		t.Fatal(err)
	}
}

func (e *e2e) run(timeout time.Duration, args ...string) (string, error) {
	c, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(c, e.kamaji, args...).CombinedOutput()
	return string(out), err
}

func (e *e2e) kubectlErr(tenant string, args ...string) (string, error) {
	args = append([]string{"--kubeconfig", filepath.Join(e.state, tenant+".kubeconfig"), "--request-timeout=10s"}, args...)
	out, err := exec.Command(e.kubectl, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func (e *e2e) kubectlT(t *testing.T, tenant string, args ...string) string {
	t.Helper()
	out, err := e.kubectlErr(tenant, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *e2e) tcp(t *testing.T, name string) *kamajiv1alpha1.TenantControlPlane {
	t.Helper()
	tcp := &kamajiv1alpha1.TenantControlPlane{}
	if err := e.cl.Get(ctx(t), client.ObjectKey{Namespace: "default", Name: name}, tcp); err != nil {
		t.Fatal(err)
	}
	return tcp
}

func (e *e2e) tenantPods(t *testing.T, name string) []corev1.Pod {
	t.Helper()
	pods, err := e.cs.CoreV1().Pods("default").List(ctx(t), metav1.ListOptions{LabelSelector: "kamaji.clastix.io/name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

func (e *e2e) scale(t *testing.T, name string, n int32) {
	t.Helper()
	tcp := e.tcp(t, name)
	if err := e.cl.SubResource("scale").Update(ctx(t), tcp, client.WithSubResourceBody(&autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: n}})); err != nil {
		t.Fatal(err)
	}
}

func (e *e2e) waitStatus(t *testing.T, name string, want kamajiv1alpha1.KubernetesVersionStatus) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s to be %s", name, want), func() error {
		tcp := &kamajiv1alpha1.TenantControlPlane{}
		if err := e.cl.Get(ctx(t), client.ObjectKey{Namespace: "default", Name: name}, tcp); err != nil {
			return err
		}
		if s := tcp.Status.Kubernetes.Version.Status; s != nil && *s == want {
			return nil
		}
		return fmt.Errorf("status %v, conditions %v", tcp.Status.Kubernetes.Version.Status, tcp.Status.Conditions)
	})
}

func (e *e2e) etcd(t *testing.T) *clientv3.Client { return e.etcdAt(t, "10.244.0.1:2379") }

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podSummary(pods []corev1.Pod) string {
	var b strings.Builder
	for _, p := range pods {
		fmt.Fprintf(&b, "%s %s ready=%v ip=%s deleting=%v;", p.Name, p.Status.Phase, podReady(&p), p.Status.PodIP, p.DeletionTimestamp != nil)
		for _, cs := range p.Status.ContainerStatuses {
			fmt.Fprintf(&b, " %s(ready=%v restarts=%d)", cs.Name, cs.Ready, cs.RestartCount)
		}
	}
	return b.String()
}

// getVersion does GET /version over TLS at target, from the host or (netns set) from a pod's
// network namespace: the socket is created on a thread that joined the namespace.
func getVersion(netns, target string) error {
	conn, err := dialIn(netns, target, 3*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reachability only
	if _, err := fmt.Fprintf(tc, "GET /version HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// snapshot is what down must leave as it found: network namespaces, links, mount points,
// iptables/ip6tables rules, the nftables ruleset and the sysctls the plane touches.
func snapshot(t *testing.T) map[string][]string {
	t.Helper()
	lines := func(name string, args ...string) []string {
		out, err := exec.Command(name, args...).Output()
		if err != nil {
			return nil // not installed yet: an empty ruleset
		}
		var keep []string
		for _, l := range strings.Split(string(out), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				keep = append(keep, l)
			}
		}
		return keep
	}
	field := func(ls []string, i int) []string {
		var out []string
		for _, l := range ls {
			if f := strings.Fields(l); len(f) > i {
				name, _, _ := strings.Cut(strings.TrimSuffix(f[i], ":"), "@")
				out = append(out, name)
			}
		}
		slices.Sort(out)
		return out
	}
	mountinfo, _ := os.ReadFile("/proc/self/mountinfo")
	var sysctls []string
	for _, s := range []string{"net/ipv4/ip_forward", "net/ipv4/conf/all/route_localnet", "net/bridge/bridge-nf-call-iptables", "net/netfilter/nf_conntrack_max",
		"vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops"} {
		v, _ := os.ReadFile("/proc/sys/" + s)
		sysctls = append(sysctls, s+"="+strings.TrimSpace(string(v)))
	}
	ruleset := func(ls []string) []string {
		// Chain counters change with traffic: compare rules and chains without them.
		out := make([]string, 0, len(ls))
		for _, l := range ls {
			if strings.HasPrefix(l, ":") {
				l, _, _ = strings.Cut(l, " [")
			}
			out = append(out, l)
		}
		return out
	}
	// The host paths a worker's mount namespace covers, and the plane's cgroups.
	var paths []string
	for _, p := range worker.HostPaths {
		if _, err := os.Stat(p); err == nil {
			paths = append(paths, p)
		}
	}
	for _, h := range []string{"cpu", "memory", "pids", "cpuset", "systemd"} {
		entries, _ := os.ReadDir(filepath.Join("/sys/fs/cgroup", h))
		for _, e := range entries {
			if e.IsDir() && strings.HasPrefix(e.Name(), "kamaji") {
				paths = append(paths, filepath.Join("/sys/fs/cgroup", h, e.Name()))
			}
		}
	}
	return map[string][]string{
		"paths":     paths,
		"netns":     field(lines("ip", "netns", "list"), 0),
		"links":     field(lines("ip", "-o", "link", "show"), 1),
		"mounts":    field(strings.Split(string(mountinfo), "\n"), 4),
		"iptables":  ruleset(lines("iptables-save")),
		"ip6tables": ruleset(lines("ip6tables-save")),
		"nft":       lines("nft", "list", "ruleset"),
		"sysctls":   sysctls,
	}
}
