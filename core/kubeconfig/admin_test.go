package kubeconfig

import (
	"bytes"
	"testing"
	"time"

	"github.com/openhcp/kamaji/core/tenantpki"
)

var servers = AdminServers{Public: "https://203.0.113.7:6443", Service: "https://tenant.team-a.svc:6443"}

func TestEnsureAdmin(t *testing.T) {
	clock := clockAt(0)
	ca := newCA(t, clock)
	data, r, err := EnsureAdmin(nil, ca, "tenant", servers, tenantpki.Options{}, clock)
	if err != nil || r != tenantpki.Created {
		t.Fatalf("reason %q err %v", r, err)
	}
	if len(data) != 4 {
		t.Fatalf("keys: %d", len(data))
	}
	adm := checkKubeconfig(t, data[KeyAdmin], ca, "tenant", servers.Public, "kubernetes-admin", []string{"kubeadm:cluster-admins"}, clock.now)
	admSvc := checkKubeconfig(t, data[KeyAdminSvc], ca, "tenant", servers.Service, "kubernetes-admin", []string{"kubeadm:cluster-admins"}, clock.now)
	sup := checkKubeconfig(t, data[KeySuperAdmin], ca, "tenant", servers.Public, "kubernetes-super-admin", []string{"system:masters"}, clock.now)
	supSvc := checkKubeconfig(t, data[KeySuperAdminSvc], ca, "tenant", servers.Service, "kubernetes-super-admin", []string{"system:masters"}, clock.now)
	if !adm.Equal(admSvc) || !sup.Equal(supSvc) {
		t.Fatal(".svc variants do not carry the .conf certificates")
	}
	if adm.Equal(sup) {
		t.Fatal("admin and super-admin share a certificate")
	}

	again, r, err := EnsureAdmin(data, ca, "tenant", servers, tenantpki.Options{}, clock)
	if err != nil || r != tenantpki.Unchanged || !sameData(again, data) {
		t.Fatalf("second call: reason %q err %v same=%v", r, err, sameData(again, data))
	}
}

func TestEnsureAdminRenewal(t *testing.T) {
	ca := newCA(t, clockAt(0))
	data, _, err := EnsureAdmin(nil, ca, "tenant", servers, tenantpki.Options{}, clockAt(0))
	if err != nil {
		t.Fatal(err)
	}
	opts := tenantpki.Options{RenewBefore: 48 * time.Hour}
	before := clockAt(tenantpki.DefaultCertValidity - 49*time.Hour)
	if kept, r, _ := EnsureAdmin(data, ca, "tenant", servers, opts, before); r != tenantpki.Unchanged || !sameData(kept, data) {
		t.Fatalf("before the deadline: %q", r)
	}
	inside := clockAt(tenantpki.DefaultCertValidity - 47*time.Hour)
	renewed, r, err := EnsureAdmin(data, ca, "tenant", servers, opts, inside)
	if err != nil || r != tenantpki.Expiring {
		t.Fatalf("inside the deadline: reason %q err %v", r, err)
	}
	for _, k := range []string{KeyAdmin, KeyAdminSvc, KeySuperAdmin, KeySuperAdminSvc} {
		if bytes.Equal(renewed[k], data[k]) {
			t.Errorf("%s not renewed", k)
		}
	}
	a := checkKubeconfig(t, renewed[KeyAdmin], ca, "tenant", servers.Public, AdminUser, []string{AdminGroup}, inside.now)
	b := checkKubeconfig(t, renewed[KeyAdminSvc], ca, "tenant", servers.Service, AdminUser, []string{AdminGroup}, inside.now)
	if !a.Equal(b) || !a.NotAfter.Equal(inside.now.Add(tenantpki.DefaultCertValidity)) {
		t.Fatal("admin.svc does not follow the renewed admin.conf")
	}
}

func TestEnsureAdminCARotationForceAndServerChange(t *testing.T) {
	clock := clockAt(0)
	ca := newCA(t, clock)
	data, _, err := EnsureAdmin(nil, ca, "tenant", servers, tenantpki.Options{}, clock)
	if err != nil {
		t.Fatal(err)
	}

	newCA := newCA(t, clock)
	rotated, r, err := EnsureAdmin(data, newCA, "tenant", servers, tenantpki.Options{}, clock)
	if err != nil || r != tenantpki.CARotated {
		t.Fatalf("CA rotation: reason %q err %v", r, err)
	}
	checkKubeconfig(t, rotated[KeySuperAdminSvc], newCA, "tenant", servers.Service, SuperAdminUser, []string{SuperAdminGroup}, clock.now)

	if _, r, _ := EnsureAdmin(data, ca, "tenant", servers, tenantpki.Options{Force: true}, clock); r != tenantpki.Forced {
		t.Fatalf("forced: %q", r)
	}

	moved := AdminServers{Public: "https://api.example.com:443", Service: servers.Service}
	out, r, err := EnsureAdmin(data, ca, "tenant", moved, tenantpki.Options{}, clock)
	if err != nil || r != ServerChanged || r.Reissued() {
		t.Fatalf("server change: reason %q err %v", r, err)
	}
	old := checkKubeconfig(t, data[KeyAdmin], ca, "tenant", servers.Public, AdminUser, []string{AdminGroup}, clock.now)
	now := checkKubeconfig(t, out[KeyAdmin], ca, "tenant", moved.Public, AdminUser, []string{AdminGroup}, clock.now)
	if !old.Equal(now) {
		t.Fatal("a server change reissued the certificate")
	}
	if !bytes.Equal(out[KeyAdminSvc], data[KeyAdminSvc]) {
		t.Fatal("admin.svc changed although its server did not")
	}
}

func TestEnsureAdminInvalid(t *testing.T) {
	clock := clockAt(0)
	ca := newCA(t, clock)
	data, _, _ := EnsureAdmin(nil, ca, "tenant", servers, tenantpki.Options{}, clock)
	data[KeyAdmin] = []byte("not a kubeconfig: [")
	out, r, err := EnsureAdmin(data, ca, "tenant", servers, tenantpki.Options{}, clock)
	if err != nil || r != tenantpki.Invalid {
		t.Fatalf("reason %q err %v", r, err)
	}
	checkKubeconfig(t, out[KeyAdmin], ca, "tenant", servers.Public, AdminUser, []string{AdminGroup}, clock.now)
	if !bytes.Equal(out[KeySuperAdmin], data[KeySuperAdmin]) {
		t.Fatal("a broken admin.conf reissued super-admin.conf")
	}
	if _, _, err := EnsureAdmin(nil, ca, "tenant", AdminServers{Service: servers.Service}, tenantpki.Options{}, clock); err == nil {
		t.Fatal("empty public server accepted")
	}
}
