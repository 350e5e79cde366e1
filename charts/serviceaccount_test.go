package charts_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// serviceAccountKubeconfig is what the manager pod would hold: the identity of the
// ServiceAccount the chart's Deployment runs as (read from the installed Deployment, not
// assumed), as a bearer token the apiserver issues through the TokenRequest API. With it the
// chart's RBAC is enforced on every request. It returns the kubeconfig's path and the
// ServiceAccount's user name.
func serviceAccountKubeconfig(ctx context.Context, t *testing.T, kc kubernetes.Interface, cfg *rest.Config, namespace, deployment string) (string, string) {
	t.Helper()
	d, err := kc.AppsV1().Deployments(namespace).Get(ctx, deployment, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the chart's Deployment: %v", err)
	}
	sa := d.Spec.Template.Spec.ServiceAccountName
	if sa == "" {
		t.Fatal("the chart's Deployment names no ServiceAccount")
	}
	// An hour outlives the test; the manager does not refresh it as a kubelet would.
	expiry := int64(3600)
	tr, err := kc.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a token of ServiceAccount %s/%s: %v", namespace, sa, err)
	}
	path := kubeconfigFile(t, cfg, "serviceaccount", fmt.Sprintf("    token: %s\n", tr.Status.Token))
	return path, "system:serviceaccount:" + namespace + ":" + sa
}

// writeKubeconfig is the test's admin kubeconfig (system:masters: RBAC allows everything).
func writeKubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	b64 := base64.StdEncoding.EncodeToString
	return kubeconfigFile(t, cfg, "admin", fmt.Sprintf("    client-certificate-data: %s\n    client-key-data: %s\n", b64(cfg.CertData), b64(cfg.KeyData)))
}

// kubeconfigFile writes a kubeconfig for cfg's apiserver with the given credentials (the
// lines of the user stanza).
func kubeconfigFile(t *testing.T, cfg *rest.Config, user, credentials string) string {
	t.Helper()
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: plane
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
%scontexts:
- name: plane
  context: {cluster: plane, user: %s}
current-context: plane
`, cfg.Host, base64.StdEncoding.EncodeToString(cfg.CAData), user, credentials, user)
	path := filepath.Join(t.TempDir(), user+".kubeconfig")
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
