package local_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"

	"github.com/openhcp/kamaji/cmd/internal/local"
)

func init() {
	registerPlaneSubtest("control planes start a few at a time", testStartQueue)
}

// testStartQueue: the plane's manager lets one more control plane start at once than the
// machine has cores (charts.go). That many TCPs whose pods no node takes (a node selector no node
// matches) hold every slot; one more TCP then waits with no replica, its Ready condition saying
// why; deleting a stuck TCP lets it start, and kubectl reaches it.
func testStartQueue(t *testing.T, e *e2e) {
	limit := runtime.NumCPU() + 1
	replicas := func(name string) (int32, error) {
		dep := &appsv1.Deployment{}
		if err := e.cl.Get(ctx(t), client.ObjectKey{Namespace: "default", Name: name}, dep); err != nil {
			return 0, err
		}
		return ptr.Deref(dep.Spec.Replicas, 1), nil
	}
	create := func(tcp *kamajiv1alpha1.TenantControlPlane) {
		t.Helper()
		if err := e.cl.Create(ctx(t), tcp); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.cl.Delete(context.Background(), tcp) })
	}
	var stuck []string
	for i := range limit {
		tcp := local.SampleTCP(fmt.Sprintf("queue-stuck-%d", i), "default")
		tcp.Spec.ControlPlane.Deployment.NodeSelector = map[string]string{"e2e.kamaji.clastix.io/no-such-node": "true"}
		create(tcp)
		stuck = append(stuck, tcp.Name)
	}
	eventually(t, "the stuck TCPs' Deployments scaled up", func() error {
		for _, n := range stuck {
			if r, err := replicas(n); err != nil || r != 1 {
				return fmt.Errorf("%s: %d replicas (%v)", n, r, err)
			}
		}
		return nil
	})

	const next = "queue-next"
	create(local.SampleTCP(next, "default"))
	want := fmt.Sprintf("waiting its turn to start: at most %d control planes start at once (manager setting max-starting-control-planes)", limit)
	eventually(t, next+" to wait its turn", func() error {
		r, err := replicas(next)
		if err != nil || r != 0 {
			return fmt.Errorf("%d replicas (%v)", r, err)
		}
		c := meta.FindStatusCondition(e.tcp(t, next).Status.Conditions, kamajiv1alpha1.ConditionReady)
		if c == nil || c.Status != "False" || !strings.HasSuffix(c.Message, want) {
			return fmt.Errorf("Ready condition %+v", c)
		}
		return nil
	})

	if err := e.cl.Delete(ctx(t), &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Name: stuck[0], Namespace: "default"}}); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(t, next, kamajiv1alpha1.VersionReady)
	e.writeKubeconfig(t, next)
}
