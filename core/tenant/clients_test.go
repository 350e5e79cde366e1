package tenant_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/tenant"
	"github.com/openhcp/kamaji/core/testenv"
)

// The "tenant" here is a test plane's apiserver: a real apiserver reached through a kubeconfig.
var plane *testenv.Plane

func TestMain(m *testing.M) { os.Exit(testenv.RunWithPlane(m, &plane)) }

// kubeconfig reaches the plane as server says (which the Dial seam may have to rewrite).
func kubeconfig(t *testing.T, server string) []byte {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["t"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: plane.Config.CAData}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{ClientCertificateData: plane.Config.CertData, ClientKeyData: plane.Config.KeyData}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "t", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 60*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

type notifications struct {
	mu   sync.Mutex
	keys map[types.NamespacedName]int
}

func (n *notifications) notify(k types.NamespacedName) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.keys[k]++
}

func (n *notifications) count(k types.NamespacedName) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.keys[k]
}

func labelled(unit map[string]string) map[string]string {
	out := map[string]string{kamajiv1alpha1.ManagedByLabel: kamajiv1alpha1.ManagedByValue}
	for k, v := range unit {
		out[k] = v
	}
	return out
}

func TestClientsReachTheTenantThroughTheDialSeam(t *testing.T) {
	// The kubeconfig names localhost on a port nothing listens on; the seam dials the plane.
	// TLS is still verified for "localhost", a SAN of the plane's certificate.
	const server = "https://localhost:1"
	cs := tenant.NewClients(tenant.Options{Dial: func(s string) string {
		if s == server {
			return plane.Config.Host
		}
		return s
	}})
	defer cs.Close()
	key := types.NamespacedName{Namespace: "ns", Name: "t1"}
	c, err := cs.Get(key, kubeconfig(t, server))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(t.Context()); err != nil {
		t.Fatalf("readyz through the seam: %v", err)
	}
	again, err := cs.Get(key, kubeconfig(t, server))
	if err != nil || again != c {
		t.Fatalf("the client of a tenant must be reused while its kubeconfig is the same: %v", err)
	}
	other, err := cs.Get(key, kubeconfig(t, plane.Config.Host))
	if err != nil || other == c {
		t.Fatalf("a new kubeconfig must give a new client: %v", err)
	}
	if err := c.Watch(t.Context(), corev1.SchemeGroupVersion.WithKind("ConfigMap")); !errors.Is(err, tenant.ErrStopped) {
		t.Fatalf("the replaced client must be stopped, Watch said %v", err)
	}

	bad := tenant.NewClients(tenant.Options{})
	defer bad.Close()
	wrong, err := bad.Get(key, kubeconfig(t, server))
	if err != nil {
		t.Fatal(err)
	}
	if err := wrong.Ready(t.Context()); err == nil {
		t.Fatal("without the seam localhost:1 must not answer")
	}
}

func TestWatchesOnlyWhatTheCoreAppliesAndStop(t *testing.T) {
	n := &notifications{keys: map[types.NamespacedName]int{}}
	cs := tenant.NewClients(tenant.Options{})
	defer cs.Close()
	cs.SetNotify(n.notify)
	key := types.NamespacedName{Namespace: "ns", Name: "watched"}
	c, err := cs.Get(key, kubeconfig(t, plane.Config.Host))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, gvk := range []string{"ConfigMap", "Deployment"} {
		g := corev1.SchemeGroupVersion.WithKind(gvk)
		if gvk == "Deployment" {
			g = appsv1.SchemeGroupVersion.WithKind(gvk)
		}
		if err := c.Watch(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	if len(cs.Watching(key)) != 2 || !cs.Active(key) {
		t.Fatalf("watching %v", cs.Watching(key))
	}
	unit := tenant.AddonUnit("coredns")
	if c.Events(unit) != 0 {
		t.Fatal("the initial list is not an event")
	}

	// An object the core did not apply is not seen; one it applied is, under its unit. The
	// watch delivers in order: once the second is seen, the first would have been.
	mk := func(name string, labels map[string]string) *corev1.ConfigMap {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: labels}}
		if err := c.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
		return cm
	}
	mk("user-owned", nil)
	mk("ours", labelled(map[string]string{kamajiv1alpha1.AddonLabel: "coredns"}))
	eventually(t, "the labelled ConfigMap's event", func() bool { return c.Events(unit) >= 1 })
	if c.Events(unit) != 1 || c.Events("other") != 0 || n.count(key) != 1 {
		t.Fatalf("events %d other %d notifications %d", c.Events(unit), c.Events("other"), n.count(key))
	}

	// Unchanged holds until an event of the unit.
	c.Record(unit, "sum", c.Events(unit))
	if !c.Unchanged(unit, "sum") || c.Unchanged(unit, "other-sum") || c.Unchanged(tenant.PhaseUnit("x"), "sum") {
		t.Fatal("Unchanged after Record")
	}

	// A Deployment's status update is not a drift; a label change is.
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "ours", Namespace: "default", Labels: labelled(map[string]string{kamajiv1alpha1.AddonLabel: "coredns"})},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}},
			},
		},
	}
	if err := c.Create(ctx, dep); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Deployment's creation", func() bool { return c.Events(unit) == 2 })
	if c.Unchanged(unit, "sum") {
		t.Fatal("an event must invalidate Unchanged")
	}
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(dep), dep); err != nil {
			return err
		}
		dep.Status.Replicas, dep.Status.ObservedGeneration = 1, dep.Generation
		return c.Status().Update(ctx, dep)
	}); err != nil {
		t.Fatal(err)
	}
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(dep), dep); err != nil {
			return err
		}
		dep.Labels["extra"] = "1"
		return c.Update(ctx, dep)
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the label change", func() bool { return c.Events(unit) >= 3 })
	if c.Events(unit) != 3 {
		t.Fatalf("the status update counted as an event: %d", c.Events(unit))
	}
	if m, ok := c.Cached(appsv1.SchemeGroupVersion.WithKind("Deployment"), "default", "ours"); !ok || m.Labels["extra"] != "1" {
		t.Fatalf("the watch cache holds the object's metadata: %v %v", m, ok)
	}

	// Deleting counts.
	if err := c.Delete(ctx, dep); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deletion", func() bool { return c.Events(unit) == 4 })

	cs.Stop(key)
	if cs.Active(key) || len(cs.Watching(key)) != 0 {
		t.Fatal("a stopped tenant keeps watching")
	}
	if err := c.Watch(ctx, corev1.SchemeGroupVersion.WithKind("ConfigMap")); !errors.Is(err, tenant.ErrStopped) {
		t.Fatalf("Watch on a stopped client: %v", err)
	}
}

func TestRelevant(t *testing.T) {
	base := func() *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "1", Generation: 2, Labels: map[string]string{"a": "b"},
			Annotations: map[string]string{kamajiv1alpha1.AddonIgnoreAnnotation: "/spec/replicas"}}}
	}
	for name, tc := range map[string]struct {
		change func(n *metav1.PartialObjectMetadata)
		want   bool
	}{
		"resync":           {func(n *metav1.PartialObjectMetadata) {}, false},
		"status only":      {func(n *metav1.PartialObjectMetadata) { n.ResourceVersion = "2" }, false},
		"spec":             {func(n *metav1.PartialObjectMetadata) { n.ResourceVersion, n.Generation = "2", 3 }, true},
		"labels":           {func(n *metav1.PartialObjectMetadata) { n.ResourceVersion, n.Labels = "2", nil }, true},
		"customisation":    {func(n *metav1.PartialObjectMetadata) { n.ResourceVersion, n.Annotations = "2", nil }, true},
		"other annotation": {func(n *metav1.PartialObjectMetadata) { n.ResourceVersion = "2"; n.Annotations["x"] = "y" }, false},
		"no generation":    {func(n *metav1.PartialObjectMetadata) { n.ResourceVersion, n.Generation = "2", 0 }, true},
		"deletion in process": {func(n *metav1.PartialObjectMetadata) {
			n.ResourceVersion, n.DeletionTimestamp = "2", &metav1.Time{Time: time.Now()}
		}, true},
	} {
		o, n := base(), base()
		tc.change(n)
		if got := tenant.Relevant(o, n); got != tc.want {
			t.Errorf("%s: Relevant = %v, want %v", name, got, tc.want)
		}
	}
}
