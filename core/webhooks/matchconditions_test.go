package webhooks_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/metrics/metricstest"
	"github.com/openhcp/kamaji/core/webhooks"
)

// webhookCalls is how many requests the manager's TCP webhooks have served so far.
func webhookCalls(t *testing.T) (mutating, validating float64) {
	t.Helper()
	f, err := metricstest.Gather(ctrlmetrics.Registry)
	if err != nil {
		t.Fatal(err)
	}
	const name = "controller_runtime_webhook_requests_total"
	return f.Sum(name, map[string]string{"webhook": webhooks.TCPMutatePath}),
		f.Sum(name, map[string]string{"webhook": webhooks.TCPValidatePath})
}

// The apiserver calls the TCP webhooks only for what they could change or refuse (their
// matchConditions): a metadata-only write such as the manager's finalizer or a user's label
// costs no round trip, an annotation reaches the validator, a spec change both.
func TestWebhooksSkipUpdatesTheyWouldAllowUnchanged(t *testing.T) {
	o := tcp("match-conditions")
	mustCreate(t, o)

	m0, v0 := webhookCalls(t)
	if err := update(t, o, func(c *kamajiv1alpha1.TenantControlPlane) { c.Labels = map[string]string{"team": "a"} }); err != nil {
		t.Fatalf("labelling: %v", err)
	}
	m1, v1 := webhookCalls(t)
	if m1 != m0 || v1 != v0 {
		t.Errorf("a label-only update reached the webhooks: %v defaulting and %v validating calls", m1-m0, v1-v0)
	}

	if err := update(t, o, func(c *kamajiv1alpha1.TenantControlPlane) {
		c.Annotations = map[string]string{"example.com/note": "x"}
	}); err != nil {
		t.Fatalf("annotating: %v", err)
	}
	m2, v2 := webhookCalls(t)
	if v2 == v1 {
		t.Error("an annotation change did not reach the validator")
	}
	if m2 != m1 {
		t.Errorf("an annotation change reached the defaulter (%v calls): it only fills the spec", m2-m1)
	}

	if err := update(t, o, func(c *kamajiv1alpha1.TenantControlPlane) {
		c.Spec.ControlPlane.Deployment.Replicas = ptr.To[int32](3)
	}); err != nil {
		t.Fatalf("scaling: %v", err)
	}
	m3, v3 := webhookCalls(t)
	if m3 == m2 || v3 == v2 {
		t.Errorf("a spec change did not reach both webhooks: %v defaulting and %v validating calls", m3-m2, v3-v2)
	}
}

// A TCP stored without its slice names (created while the defaulter was not installed, as a
// TCP adopted from another installation may be) gets them from its first update, even a
// label-only one: the controller must never see a slice without a name.
func TestWebhookDefaultsSliceNamesOfATCPCreatedWithoutIt(t *testing.T) {
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	c := ctx(t)
	mutating, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().List(c, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Whatever happens below, the webhooks are registered again for the tests that follow.
	t.Cleanup(func() {
		rc, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := env.RegisterWebhooks(rc, strings.TrimPrefix(env.WebhookURL, "https://")); err != nil {
			t.Errorf("registering the webhooks again: %v", err)
		}
		waitDefaulting(t, rc, true)
	})
	for _, m := range mutating.Items {
		if err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(c, m.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitDefaulting(t, c, false)

	o := tcp("adopted")
	o.Spec.DataStore = "default"
	// Paused: the controller leaves it alone, only admission is under test.
	o.Annotations = map[string]string{kamajiv1alpha1.PausedAnnotation: "true"}
	mustCreate(t, o)
	if o.Spec.DataStoreSchema != "" || o.Spec.DataStoreUsername != "" {
		t.Fatalf("created with slice names %q %q while the defaulter was away", o.Spec.DataStoreSchema, o.Spec.DataStoreUsername)
	}

	if err := env.RegisterWebhooks(c, strings.TrimPrefix(env.WebhookURL, "https://")); err != nil {
		t.Fatal(err)
	}
	waitDefaulting(t, c, true)
	if err := update(t, o, func(c *kamajiv1alpha1.TenantControlPlane) { c.Labels = map[string]string{"adopted": "yes"} }); err != nil {
		t.Fatalf("labelling: %v", err)
	}
	got := &kamajiv1alpha1.TenantControlPlane{}
	if err := env.Client.Get(c, client.ObjectKeyFromObject(o), got); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.Spec.DataStoreSchema, "t_default_adopted_") || got.Spec.DataStoreUsername == "" {
		t.Errorf("a label-only update left the adopted TCP without its slice names: schema %q, user %q",
			got.Spec.DataStoreSchema, got.Spec.DataStoreUsername)
	}
}

// waitDefaulting waits until the apiserver does (or no longer does) call the defaulter:
// webhook registrations reach it asynchronously.
func waitDefaulting(t *testing.T, c context.Context, want bool) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(c, 50*time.Millisecond, 30*time.Second, true, func(c context.Context) (bool, error) {
		probe := tcp("defaulting-probe")
		probe.Spec.DataStore = "default" // the validator wants one; the defaulter fills the rest
		if last = env.Client.Create(c, probe, client.DryRunAll); last != nil {
			return false, nil
		}
		return (probe.Spec.DataStoreSchema != "") == want, nil
	})
	if err != nil {
		t.Fatalf("waiting for the defaulter to be called=%v: %v (last answer: %v)", want, err, last)
	}
}
