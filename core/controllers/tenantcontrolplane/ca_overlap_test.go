package tenantcontrolplane_test

// A CA rotation as a user asks for it (certs.kamaji.clastix.io/rotate on <tcp>-ca), checked with
// real TLS against the tenant's real kube-apiserver, run from the TCP's Deployment before the
// rotation, during the overlap and after its end: clients of the old CA keep working during the
// overlap, are refused after it, and a client trusting only the old CA still verifies the
// apiserver (the cross-signed CA in its chain).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/tenantpki"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// listNamespaces is an authenticated request as cfg's user.
func listNamespaces(t *testing.T, cfg *rest.Config) error {
	t.Helper()
	var list corev1.NamespaceList
	return clientFor(t, cfg).List(ctxT(t), &list)
}

// withCA is cfg trusting caPEM only.
func withCA(cfg *rest.Config, caPEM []byte) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.TLSClientConfig.CAData, c.TLSClientConfig.CAFile = caPEM, ""
	return c
}

func TestCARotationWithOverlap(t *testing.T) {
	etcd := testkit.StartEtcd(t)
	if err := env.Client.Create(ctxT(t), dataStoreFor("ca-overlap", etcd)); err != nil {
		t.Fatal(err)
	}
	const name, bystander = "overlap", "overlap-bystander"
	caSecret := name + "-ca"
	createTCP(t, name, "ca-overlap", nil)
	createTCP(t, bystander, "ca-overlap", nil)
	_, api := runTenant(t, t, name)
	waitStatus(t, name, kamajiv1alpha1.VersionReady)
	bystanderCA := getSecret(ctxT(t), t, bystander+"-ca").Data

	// What a user held before the rotation: the admin kubeconfig (old CA, old client certificate).
	oldCA := getSecret(ctxT(t), t, caSecret).Data[tenantpki.KeyCACert]
	oldAdmin := tenantConfig(t, name, kubeconfig.KeyAdmin, api.URL)
	if err := listNamespaces(t, oldAdmin); err != nil {
		t.Fatalf("before the rotation: %v", err)
	}
	log := watchChanges(t, name)
	log.caughtUp(t)

	annotateSecret(t, caSecret, map[string]string{kamajiv1alpha1.RotateCertificatesAnnotation: ""})
	eventually(t, "a new CA with the old one kept as previous, and the pods rolled onto the bundle", func(ctx context.Context) (bool, error) {
		s := getSecret(ctx, t, caSecret)
		switch {
		case rotationPending(s):
			return false, fmt.Errorf("request pending")
		case string(s.Data[tenantpki.KeyCAPreviousCert]) != string(oldCA) || string(s.Data[tenantpki.KeyCACert]) == string(oldCA):
			return false, fmt.Errorf("CA Secret keys %v", slices.Sorted(maps.Keys(s.Data)))
		case s.Annotations[tenantpki.CAPreviousUntilAnnotation] == "":
			return false, fmt.Errorf("no end of the overlap recorded")
		case !slices.Contains(apiServerArgs(ctxT(t), t, name), "--client-ca-file=/etc/kubernetes/pki/ca-bundle.crt"):
			return false, fmt.Errorf("kube-apiserver args %v", apiServerArgs(ctxT(t), t, name))
		}
		return true, nil
	})
	end, err := tenantpki.ParseOverlapEnd(getSecret(ctxT(t), t, caSecret).Annotations[tenantpki.CAPreviousUntilAnnotation])
	if err != nil || end.Sub(now()) < 23*time.Hour {
		t.Errorf("the overlap ends %v (%v): want the 24h default ahead", end, err)
	}

	// The pods roll: the tenant apiserver as the new Deployment runs it.
	api.Stop()
	_, api = runTenant(t, t, name)
	waitStatus(t, name, kamajiv1alpha1.VersionReady)
	newAdmin := tenantConfig(t, name, kubeconfig.KeyAdmin, api.URL)
	oldAdmin.Host = api.URL
	for what, cfg := range map[string]*rest.Config{
		"the old admin kubeconfig (old CA only, old client certificate)": oldAdmin,
		"the new admin kubeconfig (both CAs, new client certificate)":    newAdmin,
		"the new client certificate trusting the old CA only":            withCA(newAdmin, oldCA),
	} {
		if err := listNamespaces(t, cfg); err != nil {
			t.Errorf("during the overlap, %s: %v", what, err)
		}
	}
	if cluster := clusterInfoCA(t, name, newAdmin); !strings.Contains(cluster, strings.TrimSpace(string(oldCA))) {
		t.Error("cluster-info does not carry the previous CA during the overlap")
	}

	// The end, a few seconds ahead: the manager comes back for it by itself.
	annotateSecret(t, caSecret, map[string]string{tenantpki.CAPreviousUntilAnnotation: now().Add(3 * time.Second).UTC().Format(time.RFC3339)})
	eventually(t, "the previous CA dropped at the end of the overlap", func(ctx context.Context) (bool, error) {
		s := getSecret(ctx, t, caSecret)
		if _, ok := s.Data[tenantpki.KeyCAPreviousCert]; ok {
			return false, fmt.Errorf("ca-previous.crt still there")
		}
		if _, ok := s.Annotations[tenantpki.CAPreviousUntilAnnotation]; ok {
			return false, fmt.Errorf("the annotation is still there")
		}
		if s.Data[tenantpki.KeyCACrossCert] == nil {
			return false, fmt.Errorf("ca-cross.crt was dropped")
		}
		return slices.Contains(apiServerArgs(ctxT(t), t, name), "--client-ca-file=/etc/kubernetes/pki/ca.crt"), fmt.Errorf("kube-apiserver args %v", apiServerArgs(ctxT(t), t, name))
	})
	api.Stop()
	_, api = runTenant(t, t, name)
	waitStatus(t, name, kamajiv1alpha1.VersionReady)
	oldAdmin.Host = api.URL
	if err := listNamespaces(t, oldAdmin); !apierrors.IsUnauthorized(err) {
		t.Errorf("the old CA's client certificate after the overlap: %v, want Unauthorized", err)
	}
	newAdmin = tenantConfig(t, name, kubeconfig.KeyAdmin, api.URL)
	for what, cfg := range map[string]*rest.Config{
		"the new admin kubeconfig":                            newAdmin,
		"the new client certificate trusting the old CA only": withCA(newAdmin, oldCA),
	} {
		if err := listNamespaces(t, cfg); err != nil {
			t.Errorf("after the overlap, %s: %v", what, err)
		}
	}
	// The TCP may still show the Ready of the pass before the restart: the pass that rewrites
	// cluster-info comes when the restarted apiserver answers the manager's recheck.
	eventually(t, "cluster-info without the previous CA", func(context.Context) (bool, error) {
		if strings.Contains(clusterInfoCA(t, name, newAdmin), strings.TrimSpace(string(oldCA))) {
			return false, errors.New("cluster-info still carries the previous CA")
		}
		return true, nil
	})
	// Two rolls: one onto the new CA, one off the previous.
	log.caughtUp(t)
	if n := log.rolls(); n != 2 {
		t.Errorf("the pods rolled %d times, want 2", n)
	}
	c := meta.FindStatusCondition(getTCP(ctxT(t), t, name).Status.Conditions, kamajiv1alpha1.ConditionCertificatesReady)
	if c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("CertificatesReady %+v", c)
	}
	if !equalData(getSecret(ctxT(t), t, bystander+"-ca").Data, bystanderCA) {
		t.Error("another TCP's CA changed")
	}

	t.Run("an end that is not RFC 3339 is named in CertificatesReady, and nothing is dropped", func(t *testing.T) {
		annotateSecret(t, caSecret, map[string]string{kamajiv1alpha1.RotateCertificatesAnnotation: ""})
		eventually(t, "a second overlap", func(ctx context.Context) (bool, error) {
			s := getSecret(ctx, t, caSecret)
			return s.Data[tenantpki.KeyCAPreviousCert] != nil && !rotationPending(s), nil
		})
		annotateSecret(t, caSecret, map[string]string{tenantpki.CAPreviousUntilAnnotation: "tomorrow"})
		eventually(t, "CertificatesReady=False naming the annotation", func(ctx context.Context) (bool, error) {
			c := meta.FindStatusCondition(getTCP(ctx, t, name).Status.Conditions, kamajiv1alpha1.ConditionCertificatesReady)
			return c != nil && c.Status == metav1.ConditionFalse && strings.Contains(c.Message, tenantpki.CAPreviousUntilAnnotation), fmt.Errorf("%+v", c)
		})
		if getSecret(ctxT(t), t, caSecret).Data[tenantpki.KeyCAPreviousCert] == nil {
			t.Error("the previous CA was dropped on a bad end")
		}
		annotateSecret(t, caSecret, map[string]string{tenantpki.CAPreviousUntilAnnotation: now().Add(time.Hour).UTC().Format(time.RFC3339)})
		waitCondition(t, name, kamajiv1alpha1.ConditionCertificatesReady, metav1.ConditionTrue, "CertificatesIssued")
	})
}

// clusterInfoCA is the CA data (PEM) of kube-public/cluster-info in the tenant.
func clusterInfoCA(t *testing.T, name string, cfg *rest.Config) string {
	t.Helper()
	var cm corev1.ConfigMap
	if err := clientFor(t, cfg).Get(ctxT(t), client.ObjectKey{Namespace: "kube-public", Name: "cluster-info"}, &cm); err != nil {
		t.Fatalf("%s's cluster-info: %v", name, err)
	}
	kc, err := clientcmd.Load([]byte(cm.Data["kubeconfig"]))
	if err != nil {
		t.Fatalf("%s's cluster-info: %v", name, err)
	}
	var out string
	for _, c := range kc.Clusters {
		out += string(c.CertificateAuthorityData)
	}
	return out
}
