package startqueue_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/core/testenv"
	"github.com/openhcp/kamaji/core/testenv/testdatastore"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// env runs the real manager, with max-starting-control-planes 1, on a real apiserver (no
// kube-controller-manager: the test plays the Deployment controller).
var env *testenv.Env

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	dir, err := os.MkdirTemp("", "kamaji-startqueue-test-")
	var plugin settings.Plugin
	if err == nil {
		plugin, err = testenv.BuildPlugin(dir, "datastore-etcd", settings.KindDataStore, "etcd")
	}
	if err == nil {
		s := testenv.DefaultSettings()
		s.Plugins = []settings.Plugin{plugin}
		s.MaxStartingControlPlanes = 1
		env, err = testenv.StartEnv(ctx, s, testenv.Options{})
	}
	cancel()
	code := testenv.RunTests(m, env, err)
	os.RemoveAll(dir)
	os.Exit(code)
}

// With a limit of one, three TCPs applied at once start one after another: the others have a
// Deployment with no replica and say where they stand in line; a start becoming available, or
// a waiting TCP deleted, lets the next one go.
func TestStartsWaitTheirTurn(t *testing.T) {
	ctx := context.Background()
	etcd := testkit.StartEtcd(t)
	ds := testdatastore.Etcd("default", etcd)
	if err := env.Client.Create(ctx, ds); err != nil {
		t.Fatal(err)
	}
	names := []string{"queue-a", "queue-b", "queue-c"}
	for _, n := range names {
		tcp := &kamajiv1alpha1.TenantControlPlane{
			ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: "default"},
			Spec: kamajiv1alpha1.TenantControlPlaneSpec{
				DataStore: "default",
				ControlPlane: kamajiv1alpha1.ControlPlane{
					Deployment: kamajiv1alpha1.DeploymentSpec{Replicas: ptr.To[int32](1)},
					Service:    kamajiv1alpha1.ServiceSpec{ServiceType: "ClusterIP"},
				},
				Kubernetes: kamajiv1alpha1.KubernetesSpec{Version: "v1.36.1"},
			},
		}
		if err := env.Client.Create(ctx, tcp); err != nil {
			t.Fatal(err)
		}
	}

	// Where each TCP stands: its Deployment's replicas and its Ready condition's message.
	type standing struct {
		replicas int32
		message  string
	}
	look := func(ctx context.Context, n string) (standing, error) {
		dep := &appsv1.Deployment{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: n}, dep); err != nil {
			return standing{}, err
		}
		tcp := &kamajiv1alpha1.TenantControlPlane{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: n}, tcp); err != nil {
			return standing{}, err
		}
		s := standing{replicas: ptr.Deref(dep.Spec.Replicas, 1)}
		if c := meta.FindStatusCondition(tcp.Status.Conditions, kamajiv1alpha1.ConditionReady); c != nil {
			s.message = c.Message
		}
		return s, nil
	}
	const waiting = "waiting its turn to start: at most 1 control planes start at once (manager setting max-starting-control-planes)"
	// split waits until exactly `starting` of the TCPs have one replica and the others none, each
	// of those saying it waits its turn, and returns both.
	split := func(what string, tcps []string, starting int) (started, waited []string) {
		t.Helper()
		var last string
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
			started, waited, last = nil, nil, ""
			for _, n := range tcps {
				s, err := look(ctx, n)
				last += fmt.Sprintf("%s: %+v %v; ", n, s, err)
				switch {
				case err != nil:
					return false, nil
				case s.replicas == 1:
					started = append(started, n)
				case s.replicas == 0 && strings.HasSuffix(s.message, waiting):
					waited = append(waited, n)
				}
			}
			if len(started) > starting {
				t.Fatalf("%d TCPs started together with a limit of one: %s", len(started), last)
			}
			return len(started) == starting && len(waited) == len(tcps)-starting, nil
		})
		if err != nil {
			t.Fatalf("timed out waiting for %s: %s", what, last)
		}
		return started, waited
	}
	// The three asked at once: any one may be first.
	first, rest := split("one TCP starting, two waiting", names, 1)

	// The first start's replica becomes available: the next goes, the last still waits.
	rollOut(t, first[0])
	second, last := split("the second TCP starting once the first is available", rest, 1)
	if s, err := look(ctx, first[0]); err != nil || s.replicas != 1 {
		t.Fatalf("%s, available: %+v %v", first[0], s, err)
	}

	// The second is deleted before it is available: the last one goes.
	if err := env.Client.Delete(ctx, &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Name: second[0], Namespace: "default"}}); err != nil {
		t.Fatal(err)
	}
	split("the last TCP starting once the one before it was deleted", last, 1)
}

func eventually(t *testing.T, what string, cond func(ctx context.Context) bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		return cond(ctx), nil
	})
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// rollOut plays the Deployment controller and the kubelet: every replica runs the current
// template and is available.
func rollOut(t *testing.T, name string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := &appsv1.Deployment{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, d); err != nil {
			return err
		}
		r := ptr.Deref(d.Spec.Replicas, 1)
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: r, UpdatedReplicas: r, ReadyReplicas: r, AvailableReplicas: r}
		return env.Client.Status().Update(context.Background(), d)
	})
	if err != nil {
		t.Fatal(err)
	}
}
