package kubeconfig

import (
	"testing"

	"github.com/openhcp/kamaji/core/tenantpki"
)

func TestBuild(t *testing.T) {
	clock := clockAt(0)
	ca := newCA(t, clock)
	cert, key, _, err := tenantpki.EnsureLeaf(nil, nil, ca, client{user: "someone", group: "team"}.profile(), tenantpki.Options{}, clock)
	if err != nil {
		t.Fatal(err)
	}
	data, err := Build("https://10.0.0.1:6443", ca.CertPEM(), "someone", cert, key, "tenant")
	if err != nil {
		t.Fatal(err)
	}
	checkKubeconfig(t, data, ca, "tenant", "https://10.0.0.1:6443", "someone", []string{"team"}, clock.now)
	again, _ := Build("https://10.0.0.1:6443", ca.CertPEM(), "someone", cert, key, "tenant")
	if string(again) != string(data) {
		t.Fatal("Build is not deterministic")
	}
	if _, err := Build("", ca.CertPEM(), "someone", cert, key, "tenant"); err == nil {
		t.Fatal("empty server accepted")
	}
	if _, err := Build("https://x", ca.CertPEM(), "someone", nil, key, "tenant"); err == nil {
		t.Fatal("empty certificate accepted")
	}
}

func TestServers(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{PublicServer("203.0.113.7:6443"), "https://203.0.113.7:6443"},
		{PublicServer("[2001:db8::1]:6443"), "https://[2001:db8::1]:6443"},
		{PublicServer("https://api.example.com"), "https://api.example.com"},
		{LocalServer(6443), "https://127.0.0.1:6443"},
		{ServiceServer("tenant", "team-a", 6443), "https://tenant.team-a.svc:6443"},
		{AdminSecretName("tenant"), "tenant-admin-kubeconfig"},
		{ControllerManagerSecretName("tenant"), "tenant-controller-manager-kubeconfig"},
		{SchedulerSecretName("tenant"), "tenant-scheduler-kubeconfig"},
		{ContextName("kubernetes-admin", "tenant"), "kubernetes-admin@tenant"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
