package local_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/testenv"

	"github.com/openhcp/kamaji/cmd/internal/local"
)

func init() {
	registerPlaneSubtest("a tenant upgraded from the previous minor keeps its worker node Ready", testWorkerUpgrade)
}

// testWorkerUpgrade joins a worker with the previous minor's kubelet (kamaji local add-worker) to
// a tenant at that minor, upgrades the tenant to the plane's version, and checks that the node
// stays Ready and its kubelet keeps renewing its Lease with the new apiserver.
func testWorkerUpgrade(t *testing.T, e *e2e) {
	const name = "e2e-node-upgrade"
	from, to := previousKubeVersion, local.KubeVersion
	ensurePreviousBins(t, from)
	ensurePreviousNodeBins(t, from)

	tcp := local.SampleTCP(name, "default")
	tcp.Spec.Kubernetes.Version = from
	if err := e.cl.Create(ctx(t), tcp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.deleteTCP(t, name) })
	e.waitStatus(t, name, kamajiv1alpha1.VersionReady)

	out, err := e.run(5*time.Minute, "local", "add-worker", "--state-dir", e.state, "--tenant", name, "--index", "1")
	t.Cleanup(func() {
		if out, err := e.run(time.Minute, "local", "remove-worker", "--state-dir", e.state, "--index", "1"); err != nil {
			t.Errorf("kamaji local remove-worker: %v\n%s", err, out)
		}
	})
	if err != nil {
		t.Fatalf("kamaji local add-worker: %v\n%s", err, out)
	}
	const nodeName = "worker-1"
	if !strings.Contains(out, "Node "+nodeName+" Ready in "+name) {
		t.Errorf("add-worker printed %q", out)
	}
	tenant := kubernetes.NewForConfigOrDie(e.tenantREST(t, name))
	n, err := tenant.CoreV1().Nodes().Get(ctx(t), nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Status.NodeInfo.KubeletVersion != from {
		t.Fatalf("kubelet %s, want %s", n.Status.NodeInfo.KubeletVersion, from)
	}

	// Another tenant cannot take the same worker.
	if out, err := e.run(time.Minute, "local", "add-worker", "--state-dir", e.state, "--tenant", "tenant-01", "--index", "1"); err == nil || !strings.Contains(out, "already joins default/"+name) {
		t.Errorf("add-worker of worker-1 to tenant-01: %v\n%s", err, out)
	}

	cur := e.tcp(t, name)
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Spec.Kubernetes.Version = to
	if err := e.cl.Patch(ctx(t), cur, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, name+" Ready on "+to, func() error {
		got := e.tcp(t, name)
		if s := got.Status.Kubernetes.Version; s.Status == nil || *s.Status != kamajiv1alpha1.VersionReady || s.Version != to {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})
	upgraded := time.Now()
	eventually(t, nodeName+" Ready, its Lease renewed by the upgraded apiserver", func() error {
		if v, err := tenant.Discovery().ServerVersion(); err != nil || v.GitVersion != to {
			return fmt.Errorf("apiserver version %v: %v", v, err)
		}
		n, err := tenant.CoreV1().Nodes().Get(ctx(t), nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		ready := false
		for _, c := range n.Status.Conditions {
			ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
		}
		if !ready {
			return fmt.Errorf("node conditions %v", n.Status.Conditions)
		}
		l, err := tenant.CoordinationV1().Leases("kube-node-lease").Get(ctx(t), nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if l.Spec.RenewTime == nil || !l.Spec.RenewTime.After(upgraded) {
			return fmt.Errorf("lease renewed at %v, before the upgrade ended (%v)", l.Spec.RenewTime, upgraded)
		}
		return nil
	})
}

// ensurePreviousNodeBins builds kubeadm and the kubelet of the previous version when missing.
// `make test` builds them in the background while the tests run: a build under way holds
// hack/kube-bins.sh's lock of the version, so this waits for it, then finds them.
func ensurePreviousNodeBins(t *testing.T, version string) {
	t.Helper()
	cache := local.DefaultConfig().Cache
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(cache, "kube", version, "bin")
	for _, b := range []struct {
		name string
		cmd  *exec.Cmd
	}{
		{"kubeadm", exec.Command(filepath.Join(root, "hack", "kube-bins.sh"), "kubeadm@"+version)},
		{"kubelet", exec.Command(filepath.Join(root, "hack", "node-bins.sh"), "kubelet")},
	} {
		if _, err := os.Stat(filepath.Join(bin, b.name)); err == nil {
			continue
		}
		b.cmd.Env = append(os.Environ(), "K8S_VERSION="+version)
		t.Logf("building %s %s (minutes, once)", b.name, version)
		if out, err := b.cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", b.cmd.Args, err, out)
		}
	}
}
