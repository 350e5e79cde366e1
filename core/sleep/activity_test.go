package sleep

import (
	"context"
	"errors"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// The fake client is enough here: what is tested is which Lease the Recorder declares and when,
// not how the apiserver merges it.

func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := kamajiv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func sleepyTCP(name, sleepAfter string) *kamajiv1alpha1.TenantControlPlane {
	tcp := &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{
		Name: name, Namespace: "tenants", UID: types.UID("uid-" + name),
	}}
	if sleepAfter != "" {
		tcp.Annotations = map[string]string{kamajiv1alpha1.SleepAfterAnnotation: sleepAfter}
	}
	return tcp
}

// fakeClock is a settable Now.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func renewTime(t *testing.T, c client.Client, tcp string) time.Time {
	t.Helper()
	var l coordinationv1.Lease
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: "tenants", Name: LeaseName(tcp)}, &l); err != nil {
		t.Fatalf("get lease of %s: %v", tcp, err)
	}
	return LastActivity(&l)
}

func TestRecorderWritesLease(t *testing.T) {
	ctx := context.Background()
	tcp := sleepyTCP("a", "10m")
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(tcp).Build()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)}
	r := &Recorder{Client: c, Now: clk.now}
	key := client.ObjectKeyFromObject(tcp)

	if err := r.Touch(ctx, key, false); err != nil {
		t.Fatal(err)
	}
	var l coordinationv1.Lease
	if err := c.Get(ctx, types.NamespacedName{Namespace: "tenants", Name: "a-activity"}, &l); err != nil {
		t.Fatal(err)
	}
	if got := LastActivity(&l); !got.Equal(clk.t) {
		t.Errorf("renewTime = %s, want %s", got, clk.t)
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "kamaji" {
		t.Errorf("holderIdentity = %v, want kamaji", l.Spec.HolderIdentity)
	}
	if l.Labels[ActivityLabel] != "a" || l.Labels[kamajiv1alpha1.ManagedByLabel] != kamajiv1alpha1.ManagedByValue {
		t.Errorf("labels = %v", l.Labels)
	}
	if len(l.OwnerReferences) != 1 {
		t.Fatalf("ownerReferences = %v, want one", l.OwnerReferences)
	}
	o := l.OwnerReferences[0]
	if o.APIVersion != "kamaji.clastix.io/v1alpha1" || o.Kind != "TenantControlPlane" || o.Name != "a" || o.UID != tcp.UID ||
		(o.Controller != nil && *o.Controller) {
		t.Errorf("ownerReference = %+v", o)
	}

	// Within TouchInterval (2m30s for 10m) a touch is skipped, unless forced.
	first := clk.t
	clk.t = clk.t.Add(time.Minute)
	if err := r.Touch(ctx, key, false); err != nil {
		t.Fatal(err)
	}
	if got := renewTime(t, c, "a"); !got.Equal(first) {
		t.Errorf("unforced touch within the interval wrote %s", got)
	}
	if err := r.Touch(ctx, key, true); err != nil {
		t.Fatal(err)
	}
	if got := renewTime(t, c, "a"); !got.Equal(clk.t) {
		t.Errorf("forced touch: renewTime = %s, want %s", got, clk.t)
	}
	clk.t = clk.t.Add(TouchInterval(10 * time.Minute))
	if err := r.Touch(ctx, key, false); err != nil {
		t.Fatal(err)
	}
	if got := renewTime(t, c, "a"); !got.Equal(clk.t) {
		t.Errorf("touch after the interval: renewTime = %s, want %s", got, clk.t)
	}
}

func TestRecorderIgnores(t *testing.T) {
	ctx := context.Background()
	deleting := sleepyTCP("deleting", "10m")
	deleting.Finalizers = []string{"kamaji.clastix.io/finalizer"}
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(
		sleepyTCP("awake", ""), sleepyTCP("invalid", "5s"), deleting,
	).Build()
	r := &Recorder{Client: c}
	for _, name := range []string{"awake", "invalid", "deleting", "missing"} {
		if err := r.Touch(ctx, types.NamespacedName{Namespace: "tenants", Name: name}, true); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	var leases coordinationv1.LeaseList
	if err := c.List(ctx, &leases); err != nil {
		t.Fatal(err)
	}
	if len(leases.Items) != 0 {
		t.Errorf("leases written: %v", leases.Items)
	}
}

// A failed write is not remembered: the next unforced touch writes.
func TestRecorderRetriesAfterFailure(t *testing.T) {
	ctx := context.Background()
	tcp := sleepyTCP("a", "10m")
	fail := true
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(tcp).WithInterceptorFuncs(interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if fail {
				return errors.New("apiserver unavailable")
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
	}).Build()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)}
	r := &Recorder{Client: c, Now: clk.now}
	key := client.ObjectKeyFromObject(tcp)
	if err := r.Touch(ctx, key, false); err == nil {
		t.Fatal("Touch hid the write error")
	}
	fail = false
	clk.t = clk.t.Add(time.Second)
	if err := r.Touch(ctx, key, false); err != nil {
		t.Fatal(err)
	}
	if got := renewTime(t, c, "a"); !got.Equal(clk.t) {
		t.Errorf("renewTime = %s, want %s", got, clk.t)
	}
}

func TestLastActivityNil(t *testing.T) {
	if !LastActivity(nil).IsZero() || !LastActivity(&coordinationv1.Lease{}).IsZero() {
		t.Error("LastActivity of a Lease without renewTime is not zero")
	}
}
