package exposure_test

// Against a real kube-apiserver and the real Gateway API CRDs (sigs.k8s.io/gateway-api's
// config/crd): the routes the core builds are accepted by each channel's schema, at the version
// the cluster serves, and that version is found again when the CRDs change.

import (
	"context"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/exposure"
	"github.com/openhcp/kamaji/core/testenv"
)

func TestTLSRoutesAgainstTheRealCRDs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	plane, err := testenv.Start(ctx, testenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer plane.Stop()
	c, err := client.New(plane.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := apiextensionsclient.NewForConfig(plane.Config)
	if err != nil {
		t.Fatal(err)
	}

	tcp := &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Name: "t", Namespace: "default"}}
	tcp.Spec.NetworkProfile.Port = 6443
	tcp.Spec.ControlPlane.Gateway = &kamajiv1alpha1.GatewaySpec{Hostname: "t.example.com",
		GatewayParentRefs: []kamajiv1alpha1.GatewayParentReference{{Name: "gw", Namespace: ptr.To("gateways")}}}
	tcp.Spec.Addons.Konnectivity = &kamajiv1alpha1.KonnectivitySpec{}

	// served polls the mapper: discovery of a changed CRD reaches it shortly after.
	served := func(want string) schema.GroupVersionKind {
		t.Helper()
		var gvk schema.GroupVersionKind
		var last error
		if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
			gvk, last = exposure.ServedTLSRouteVersion(c.RESTMapper())
			return last == nil && gvk.Version == want, nil
		}); err != nil {
			t.Fatalf("served TLSRoute version: %v %v, want %s", gvk, last, want)
		}
		return gvk
	}
	applyRoutes := func(gvk schema.GroupVersionKind) {
		t.Helper()
		for _, r := range []*unstructured.Unstructured{must(exposure.TLSRouteAt(exposure.TLSRoute(tcp), gvk)), must(exposure.TLSRouteAt(exposure.KonnectivityTLSRoute(tcp), gvk))} {
			if err := apply.Apply(ctx, c, r); err != nil {
				t.Fatalf("%s at %s refused by the real CRD: %v", r.GetName(), gvk.Version, err)
			}
			back := &unstructured.Unstructured{}
			back.SetGroupVersionKind(gvk)
			if err := c.Get(ctx, client.ObjectKeyFromObject(r), back); err != nil {
				t.Fatal(err)
			}
			sections, _, _ := unstructured.NestedSlice(back.Object, "spec", "parentRefs")
			if len(sections) != 1 {
				t.Fatalf("%s: parentRefs %v", r.GetName(), sections)
			}
		}
	}

	if _, err := exposure.ServedTLSRouteVersion(c.RESTMapper()); !meta.IsNoMatchError(err) {
		t.Fatalf("without the Gateway API: want a no-match error, got %v", err)
	}

	// Older CRDs that serve TLSRoute v1alpha2 only: the experimental channel's CRD with v1 and
	// v1alpha3 not served (the shape of Gateway API up to v1.4).
	experimental, err := testenv.GatewayAPICRDs(testenv.GatewayExperimental)
	if err != nil {
		t.Fatal(err)
	}
	var old *apiextensionsv1.CustomResourceDefinition
	for _, crd := range experimental {
		if crd.Name == "tlsroutes.gateway.networking.k8s.io" {
			old = crd.DeepCopy()
		}
	}
	if old == nil {
		t.Fatal("no TLSRoute CRD in the experimental channel")
	}
	for i := range old.Spec.Versions {
		v := &old.Spec.Versions[i]
		v.Served, v.Storage = v.Name == "v1alpha2", v.Name == "v1alpha2"
	}
	if err := testenv.InstallCRDs(ctx, cs, old); err != nil {
		t.Fatal(err)
	}
	applyRoutes(served("v1alpha2"))

	// Upgraded to the experimental channel of v1.6 (v1 served): the same mapper finds v1.
	if err := plane.InstallGatewayAPI(ctx, testenv.GatewayExperimental); err != nil {
		t.Fatal(err)
	}
	applyRoutes(served("v1"))

	// The standard channel: v1 only, with v1's stricter schema.
	if err := plane.InstallGatewayAPI(ctx, testenv.GatewayStandard); err != nil {
		t.Fatal(err)
	}
	gvk := served("v1")
	applyRoutes(gvk)
	bad := tcp.DeepCopy()
	bad.Name = "ip"
	bad.Spec.ControlPlane.Gateway.Hostname = "10.0.0.1"
	err = apply.Apply(ctx, c, must(exposure.TLSRouteAt(exposure.TLSRoute(bad), gvk)))
	if err == nil || !strings.Contains(err.Error(), "Hostnames cannot contain an IP") {
		t.Errorf("the v1 schema must refuse an IP as host name: %v", err)
	}
}

func must(u *unstructured.Unstructured, err error) *unstructured.Unstructured {
	if err != nil {
		panic(err)
	}
	return u
}
