package tenantcontrolplane_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	dscontroller "github.com/openhcp/kamaji/core/controllers/datastore"
	"github.com/openhcp/kamaji/core/tenantpki"
	"github.com/openhcp/kamaji/core/testenv"
	"github.com/openhcp/kamaji/sdk/testkit"
)

func annotateSecret(t *testing.T, name string, add map[string]string, remove ...string) {
	t.Helper()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s := getSecret(ctxT(t), t, name)
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		for k, v := range add {
			s.Annotations[k] = v
		}
		for _, k := range remove {
			delete(s.Annotations, k)
		}
		return env.Client.Update(ctxT(t), s)
	}); err != nil {
		t.Fatal(err)
	}
}

func TestPausedSecretsAndDataStores(t *testing.T) {
	etcd := testkit.StartEtcd(t)

	t.Run("a paused DataStore is not reconciled until resumed", func(t *testing.T) {
		ds := dataStoreFor("paused", etcd)
		ds.Annotations = map[string]string{kamajiv1alpha1.PausedAnnotation: ""}
		if err := env.Client.Create(ctxT(t), ds); err != nil {
			t.Fatal(err)
		}
		// The reconciler the manager runs returns before touching the plugin host (nil here).
		r := &dscontroller.Reconciler{Client: env.Client}
		if _, err := r.Reconcile(ctxT(t), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ds)}); err != nil {
			t.Fatal(err)
		}
		got := &kamajiv1alpha1.DataStore{}
		if err := env.Client.Get(ctxT(t), client.ObjectKeyFromObject(ds), got); err != nil {
			t.Fatal(err)
		}
		if len(got.Status.Conditions) != 0 {
			t.Fatalf("a paused DataStore got a status: %v", got.Status.Conditions)
		}
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := env.Client.Get(ctxT(t), client.ObjectKeyFromObject(ds), got); err != nil {
				return err
			}
			delete(got.Annotations, kamajiv1alpha1.PausedAnnotation)
			return env.Client.Update(ctxT(t), got)
		}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the resumed DataStore to be Ready", func(ctx context.Context) (bool, error) {
			err := env.Client.Get(ctx, client.ObjectKeyFromObject(ds), got)
			return err == nil && meta.IsStatusConditionTrue(got.Status.Conditions, "Ready"), fmt.Errorf("%v", got.Status.Conditions)
		})
	})

	t.Run("a paused Secret is kept when the others rotate", func(t *testing.T) {
		tcp := newTCP("paused-secret", "v1.37.2")
		tcp.Spec.DataStore = "paused"
		if err := env.Client.Create(ctxT(t), tcp); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the TCP's certificates", func(ctx context.Context) (bool, error) {
			c := meta.FindStatusCondition(getTCP(ctx, t, "paused-secret").Status.Conditions, kamajiv1alpha1.ConditionKubeconfigsReady)
			return c != nil && c.Status == metav1.ConditionTrue, fmt.Errorf("%+v", c)
		})
		apiName := tenantpki.SecretName("paused-secret", tenantpki.APIServer)
		kcName := tenantpki.SecretName("paused-secret", tenantpki.APIServerKubeletClient)
		apiBefore := certOf(t, getSecret(ctxT(t), t, apiName), tenantpki.KeyAPIServerCert).SerialNumber
		kcBefore := certOf(t, getSecret(ctxT(t), t, kcName), tenantpki.KeyAPIServerKubeletClientCert).SerialNumber
		annotateSecret(t, apiName, map[string]string{kamajiv1alpha1.PausedAnnotation: ""})
		updateTCP(t, "paused-secret", func(x *kamajiv1alpha1.TenantControlPlane) {
			x.Annotations = map[string]string{kamajiv1alpha1.RotateCertificatesAnnotation: ""}
		})
		eventually(t, "the unpaused certificate to rotate and the request to be honoured", func(ctx context.Context) (bool, error) {
			kc := certOf(t, getSecret(ctx, t, kcName), tenantpki.KeyAPIServerKubeletClientCert).SerialNumber
			_, pending := getTCP(ctx, t, "paused-secret").Annotations[kamajiv1alpha1.RotateCertificatesAnnotation]
			return kc.Cmp(kcBefore) != 0 && !pending, nil
		})
		if now := certOf(t, getSecret(ctxT(t), t, apiName), tenantpki.KeyAPIServerCert).SerialNumber; now.Cmp(apiBefore) != 0 {
			t.Fatal("the paused Secret was rewritten")
		}
	})

	t.Run("TLSRoutes at the served version, accepted by the real Gateway API CRDs; Ready", func(t *testing.T) {
		// The real standard channel (Gateway API v1.6): TLSRoute is served as v1 only.
		installGatewayAPI(t, testenv.GatewayStandard)
		tcp := newTCP("gateway", "v1.37.2")
		tcp.Spec.DataStore = "paused"
		ns := "gateways"
		tcp.Spec.ControlPlane.Gateway = &kamajiv1alpha1.GatewaySpec{Hostname: "gw.example.com",
			GatewayParentRefs: []kamajiv1alpha1.GatewayParentReference{{Name: "public", Namespace: &ns}}}
		tcp.Spec.Addons.Konnectivity = &kamajiv1alpha1.KonnectivitySpec{}
		// The webhook's discovery of the new API is asynchronous: retry the create until it sees it.
		var last error
		if err := wait.PollUntilContextTimeout(ctxT(t), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			last = env.Client.Create(ctx, tcp.DeepCopy())
			return last == nil, nil
		}); err != nil {
			t.Fatalf("create with a gateway: %v", last)
		}
		getRoute := func(ctx context.Context, name string) (*gatewayv1.TLSRoute, error) {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("gateway.networking.k8s.io/v1")
			u.SetKind("TLSRoute")
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, u); err != nil {
				return nil, err
			}
			r := &gatewayv1.TLSRoute{}
			return r, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, r)
		}
		var route, konn *gatewayv1.TLSRoute
		eventually(t, "the TLSRoutes", func(ctx context.Context) (bool, error) {
			var err1, err2 error
			route, err1 = getRoute(ctx, "gateway")
			konn, err2 = getRoute(ctx, "gateway-konnectivity")
			return err1 == nil && err2 == nil, fmt.Errorf("%v / %v", err1, err2)
		})
		check := func(r *gatewayv1.TLSRoute, section string, port int32) {
			t.Helper()
			if len(r.Spec.Hostnames) != 1 || r.Spec.Hostnames[0] != "gw.example.com" {
				t.Errorf("%s: hostnames %v", r.Name, r.Spec.Hostnames)
			}
			if p := r.Spec.ParentRefs; len(p) != 1 || p[0].Name != "public" || p[0].Namespace == nil || *p[0].Namespace != "gateways" ||
				p[0].SectionName == nil || string(*p[0].SectionName) != section || p[0].Port != nil {
				t.Errorf("%s: parentRefs %+v, want public in gateways, sectionName %s", r.Name, p, section)
			}
			if b := r.Spec.Rules; len(b) != 1 || len(b[0].BackendRefs) != 1 || b[0].BackendRefs[0].Name != "gateway" || *b[0].BackendRefs[0].Port != port {
				t.Errorf("%s: rules %+v, want the Service gateway on %d", r.Name, b, port)
			}
			if len(r.OwnerReferences) != 1 || r.OwnerReferences[0].Kind != "TenantControlPlane" {
				t.Errorf("%s: owner %+v", r.Name, r.OwnerReferences)
			}
		}
		check(route, "kube-apiserver", 6443)
		check(konn, "konnectivity-server", 8132)

		eventually(t, "the Deployment", func(ctx context.Context) (bool, error) {
			return env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "gateway"}, &appsv1.Deployment{}) == nil, nil
		})
		rollOut(t, "gateway")
		ready := waitStatus(t, "gateway", kamajiv1alpha1.VersionReady)
		if g := ready.Status.Kubernetes.Gateway; g == nil || g.Name != "gateway" {
			t.Errorf("status.kubernetesResources.gateway %+v", g)
		}
		if g := ready.Status.Addons.Konnectivity.Gateway; g == nil || g.Name != "gateway-konnectivity" {
			t.Errorf("status.addons.konnectivity.gateway %+v", g)
		}
		eventually(t, "the gateway host name in the apiserver certificate", func(ctx context.Context) (bool, error) {
			s := &corev1.Secret{}
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: tenantpki.SecretName("gateway", tenantpki.APIServer)}, s); err != nil {
				return false, err
			}
			for _, n := range certOf(t, s, tenantpki.KeyAPIServerCert).DNSNames {
				if n == "gw.example.com" {
					return true, nil
				}
			}
			return false, nil
		})

		// Without konnectivity its route goes, and the apiserver's no longer names a listener.
		updateTCP(t, "gateway", func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.Addons.Konnectivity = nil })
		eventually(t, "the konnectivity TLSRoute to be removed", func(ctx context.Context) (bool, error) {
			_, err := getRoute(ctx, "gateway-konnectivity")
			if !apierrors.IsNotFound(err) {
				return false, fmt.Errorf("still there: %v", err)
			}
			r, err := getRoute(ctx, "gateway")
			return err == nil && r.Spec.ParentRefs[0].SectionName == nil, fmt.Errorf("parentRefs %+v, %v", r.Spec.ParentRefs, err)
		})
		// Without a gateway, the route goes too.
		updateTCP(t, "gateway", func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.ControlPlane.Gateway = nil })
		eventually(t, "the TLSRoute to be removed", func(ctx context.Context) (bool, error) {
			_, err := getRoute(ctx, "gateway")
			return apierrors.IsNotFound(err), err
		})
	})
}

// installGatewayAPI installs a channel of the real Gateway API CRDs (sigs.k8s.io/gateway-api).
func installGatewayAPI(t *testing.T, channel string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.InstallGatewayAPI(ctx, channel); err != nil {
		t.Fatal(err)
	}
}
