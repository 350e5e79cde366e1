package tenantcontrolplane_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

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

	t.Run("a Gateway TLSRoute is applied when the Gateway API is served", func(t *testing.T) {
		installTLSRoute(t)
		tcp := newTCP("gateway", "v1.37.2")
		tcp.Spec.DataStore = "paused"
		ns := "gateways"
		tcp.Spec.ControlPlane.Gateway = &kamajiv1alpha1.GatewaySpec{Hostname: "gw.example.com",
			GatewayParentRefs: []kamajiv1alpha1.GatewayParentReference{{Name: "public", Namespace: &ns}}}
		// The webhook's discovery of the new API is asynchronous: retry the create until it sees it.
		var last error
		if err := wait.PollUntilContextTimeout(ctxT(t), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			last = env.Client.Create(ctx, tcp.DeepCopy())
			return last == nil, nil
		}); err != nil {
			t.Fatalf("create with a gateway: %v", last)
		}
		route := &unstructured.Unstructured{}
		route.SetAPIVersion("gateway.networking.k8s.io/v1alpha2")
		route.SetKind("TLSRoute")
		eventually(t, "the TLSRoute", func(ctx context.Context) (bool, error) {
			err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "gateway"}, route)
			return err == nil, err
		})
		hosts, _, _ := unstructured.NestedStringSlice(route.Object, "spec", "hostnames")
		parents, _, _ := unstructured.NestedSlice(route.Object, "spec", "parentRefs")
		if strings.Join(hosts, ",") != "gw.example.com" || len(parents) != 1 {
			t.Errorf("TLSRoute spec %v", route.Object["spec"])
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
	})
}

func installTLSRoute(t *testing.T) {
	t.Helper()
	if err := testenv.IgnoreAlreadyExists(env.Client.Create(ctxT(t), testenv.TLSRouteCRD())); err != nil {
		t.Fatal(err)
	}
}
