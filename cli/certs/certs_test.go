package certs

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	corekubeconfig "github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/pki"
)

func issue(t *testing.T) (*pki.KeyPair, *pki.KeyPair) {
	t.Helper()
	ca, err := pki.NewCA("kubernetes", 24*time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(pki.Request{CommonName: "kubernetes-admin", Organization: []string{"kubeadm:cluster-admins"},
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return ca, leaf
}

func TestFromPKISecret(t *testing.T) {
	ca, leaf := issue(t)
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "t-ca"}, Data: map[string][]byte{
		"ca.crt": ca.CertPEM(), "ca.key": []byte("secret"), "z.crt": leaf.CertPEM(),
	}}
	got, err := FromSecret(s, false)
	if err != nil || len(got) != 2 {
		t.Fatalf("%v %+v", err, got)
	}
	if got[0].Key != "ca.crt" || got[0].Subject != "kubernetes" || !got[0].IsCA || got[0].NotAfter.Sub(time.Now()) < 23*time.Hour {
		t.Errorf("ca: %+v", got[0])
	}
	if got[1].Subject != "kubernetes-admin (kubeadm:cluster-admins)" || got[1].Issuer != "kubernetes" || got[1].IsCA {
		t.Errorf("leaf: %+v", got[1])
	}
	s.Data["bad.crt"] = []byte("nope")
	got, err = FromSecret(s, false)
	if err == nil || !strings.Contains(err.Error(), "Secret t-ca: bad.crt: no PEM certificate") || len(got) != 2 {
		t.Fatalf("a bad key: %v, %d certificates", err, len(got))
	}
}

func TestFromKubeconfigSecret(t *testing.T) {
	ca, leaf := issue(t)
	key, err := leaf.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	conf, err := corekubeconfig.Build("https://10.0.0.1:6443", ca.CertPEM(), "kubernetes-admin", leaf.CertPEM(), key, "t")
	if err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "t-admin-kubeconfig"}, Data: map[string][]byte{"admin.conf": conf}}
	got, err := FromSecret(s, true)
	if err != nil || len(got) != 1 || got[0].Key != "admin.conf" || !got[0].NotAfter.Equal(leaf.Cert.NotAfter) {
		t.Fatalf("%v %+v", err, got)
	}
	s.Data["broken.conf"] = []byte("{")
	if _, err := FromSecret(s, true); err == nil || !strings.Contains(err.Error(), "broken.conf: not a kubeconfig") {
		t.Fatalf("broken kubeconfig: %v", err)
	}
}

func TestSources(t *testing.T) {
	tcp := &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Name: "t"}}
	var names []string
	for _, s := range Sources(tcp) {
		names = append(names, s.Name)
	}
	want := "t-ca t-api-server-certificate t-api-server-kubelet-client-certificate t-front-proxy-ca-certificate t-front-proxy-client-certificate t-admin-kubeconfig t-controller-manager-kubeconfig t-scheduler-kubeconfig"
	if strings.Join(names, " ") != want {
		t.Fatalf("defaults:\n got %s\nwant %s", strings.Join(names, " "), want)
	}
	tcp.Status.Storage.Certificate.SecretName = "t-datastore-certificate"
	tcp.Status.Addons.Konnectivity.Certificate.SecretName = "t-konnectivity-certificate"
	tcp.Status.Addons.Konnectivity.Kubeconfig.SecretName = "t-konnectivity-kubeconfig"
	tcp.Status.Certificates.CA.SecretName = "recorded-ca"
	srcs := Sources(tcp)
	if len(srcs) != 11 || srcs[0].Name != "recorded-ca" || !srcs[len(srcs)-1].Kubeconfig || srcs[5].Name != "t-datastore-certificate" {
		t.Fatalf("%+v", srcs)
	}
}
