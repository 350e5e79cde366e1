package kubeconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// tenantConf is a kubeconfig as the core writes it: one cluster, one user, one context.
func tenantConf(t *testing.T, server, user string) []byte {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["tenant-00"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: []byte("CA")}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: []byte("CERT"), ClientKeyData: []byte("KEY")}
	cfg.Contexts[user+"@tenant-00"] = &clientcmdapi.Context{Cluster: "tenant-00", AuthInfo: user}
	cfg.CurrentContext = user + "@tenant-00"
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVariantKeys(t *testing.T) {
	for v, want := range map[Variant]string{
		{}:                                  "admin.conf",
		{SuperAdmin: true}:                  "super-admin.conf",
		{InCluster: true}:                   "admin.svc",
		{SuperAdmin: true, InCluster: true}: "super-admin.svc",
	} {
		if got := v.Key(); got != want {
			t.Errorf("%+v: %s, want %s", v, got, want)
		}
	}
}

func TestSecretName(t *testing.T) {
	tcp := &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Name: "t"}}
	if got := SecretName(tcp); got != "t-admin-kubeconfig" {
		t.Errorf("default %s", got)
	}
	tcp.Status.KubeConfig.Admin.SecretName = "custom"
	if got := SecretName(tcp); got != "custom" {
		t.Errorf("recorded %s", got)
	}
}

func TestFromSecret(t *testing.T) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "t-admin-kubeconfig"}, Data: map[string][]byte{
		"admin.conf":       tenantConf(t, "https://10.0.0.1:6443", "kubernetes-admin"),
		"super-admin.conf": []byte("{not yaml"),
	}}
	if data, err := FromSecret(s, "admin.conf"); err != nil || len(data) == 0 {
		t.Fatalf("admin.conf: %v", err)
	}
	_, err := FromSecret(s, "admin.svc")
	if err == nil || err.Error() != `Secret ns/t-admin-kubeconfig has no "admin.svc" (it holds: admin.conf, super-admin.conf)` {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := FromSecret(s, "super-admin.conf"); err == nil || !strings.Contains(err.Error(), `key "super-admin.conf": not a kubeconfig`) {
		t.Fatalf("broken kubeconfig: %v", err)
	}
}

func TestServerCAAndRename(t *testing.T) {
	data := tenantConf(t, "https://10.0.0.1:6443", "kubernetes-admin")
	if s, err := Server(data); err != nil || s != "https://10.0.0.1:6443" {
		t.Fatalf("Server %q %v", s, err)
	}
	if ca, err := CA(data); err != nil || string(ca) != "CA" {
		t.Fatalf("CA %q %v", ca, err)
	}
	renamed, err := Rename(data, "team-a/t")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(renamed)
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts["team-a/t"]
	if cfg.CurrentContext != "team-a/t" || ctx == nil || ctx.Cluster != "team-a/t" || ctx.AuthInfo != "team-a/t" ||
		cfg.Clusters["team-a/t"].Server != "https://10.0.0.1:6443" || string(cfg.AuthInfos["team-a/t"].ClientKeyData) != "KEY" {
		t.Fatalf("renamed: %+v", cfg)
	}
}

func TestMerge(t *testing.T) {
	into := clientcmdapi.NewConfig()
	into.Clusters["admin"] = &clientcmdapi.Cluster{Server: "https://admin:6443"}
	into.AuthInfos["me"] = &clientcmdapi.AuthInfo{Token: "x"}
	into.Contexts["admin"] = &clientcmdapi.Context{Cluster: "admin", AuthInfo: "me"}
	into.CurrentContext = "admin"

	a := tenantConf(t, "https://10.0.0.1:6443", "kubernetes-admin")
	b := tenantConf(t, "https://10.0.0.2:6443", "kubernetes-admin")
	if err := Merge(into, a, "team-a/a", false, false); err != nil {
		t.Fatal(err)
	}
	// Two tenants' admin.conf both name their user kubernetes-admin: no collision.
	if err := Merge(into, b, "team-a/b", false, true); err != nil {
		t.Fatal(err)
	}
	if into.Clusters["team-a/a"].Server != "https://10.0.0.1:6443" || into.Clusters["team-a/b"].Server != "https://10.0.0.2:6443" || into.CurrentContext != "team-a/b" {
		t.Fatalf("merged: %+v", into)
	}
	if into.Contexts["admin"] == nil || into.AuthInfos["me"] == nil {
		t.Fatal("existing entries lost")
	}
	err := Merge(into, b, "team-a/a", false, false)
	var exists *ErrExists
	if !errors.As(err, &exists) || !strings.Contains(err.Error(), `already has a context named "team-a/a"`) || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("existing context: %v", err)
	}
	if err := Merge(into, b, "admin", false, false); err == nil {
		t.Fatal("an existing cluster name was replaced without --overwrite")
	}
	if err := Merge(into, b, "team-a/a", true, false); err != nil || into.Clusters["team-a/a"].Server != "https://10.0.0.2:6443" {
		t.Fatalf("overwrite: %v", err)
	}
}

func TestMergeIntoFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config")
	admin := clientcmdapi.NewConfig()
	admin.Clusters["admin"] = &clientcmdapi.Cluster{Server: "https://admin:6443"}
	admin.AuthInfos["me"] = &clientcmdapi.AuthInfo{Token: "x"}
	admin.Contexts["admin"] = &clientcmdapi.Context{Cluster: "admin", AuthInfo: "me"}
	admin.CurrentContext = "admin"
	if err := clientcmd.WriteToFile(*admin, file); err != nil {
		t.Fatal(err)
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = file
	access := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ConfigAccess()
	got, err := MergeInto(access, tenantConf(t, "https://10.0.0.1:6443", "kubernetes-admin"), "team-a/a", false, false)
	if err != nil || got != file {
		t.Fatalf("MergeInto: %s %v", got, err)
	}
	cfg, err := clientcmd.LoadFromFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentContext != "admin" || cfg.Contexts["team-a/a"] == nil || cfg.Clusters["team-a/a"].Server != "https://10.0.0.1:6443" {
		t.Fatalf("file after merge: %+v", cfg)
	}
	if _, err := MergeInto(access, tenantConf(t, "https://x", "u"), "team-a/a", false, false); err == nil {
		t.Fatal("second merge under the same name accepted")
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
}
