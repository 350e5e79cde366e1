package driver

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// The checks every driver must pass live in the conformance kit (see ../conformance_test.go);
// these cover what is specific to etcd.

func TestUsernameCollisionIsRefused(t *testing.T) {
	etcd := testkit.StartEtcd(t)
	d := New()
	t.Cleanup(d.Close)
	ctx := t.Context()
	cfg := etcd.Config()
	owner := datastore.Tenant{Namespace: "ns", Name: "a", UID: "uid-a", Schema: "ns_a", Username: "shared"}
	intruder := datastore.Tenant{Namespace: "ns", Name: "b", UID: "uid-b", Schema: "ns_b", Username: "shared"}
	if _, err := d.EnsureTenant(ctx, cfg, owner); err != nil {
		t.Fatal(err)
	}
	_, err := d.EnsureTenant(ctx, cfg, intruder)
	wantOwned(t, err, "tenant.username", owner.Owner().String())
	// Cleaning up the refused tenant must not take the owner's user or grant with it.
	if err := d.DeleteTenant(ctx, cfg, intruder); err != nil {
		t.Fatal(err)
	}
	root := etcd.Client(t)
	u, err := root.UserGet(ctx, "shared")
	if err != nil || len(u.Roles) != 1 {
		t.Fatalf("owner's user after the intruder's cleanup: %+v, %v", u, err)
	}
	r, err := root.RoleGet(ctx, "shared")
	if err != nil || len(r.Perm) != 1 || string(r.Perm[0].Key) != "/ns_a/" {
		t.Fatalf("owner's role after the intruder's cleanup: %+v, %v", r, err)
	}
	if n := d.pool.len(); n != 1 {
		t.Errorf("%d cached connections for one configuration, want 1", n)
	}
}

func TestValidateConfigReportsTheCause(t *testing.T) {
	etcd := testkit.StartEtcd(t)
	d := New()
	t.Cleanup(d.Close)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	down := etcd.Config()
	down.Endpoints = []string{"127.0.0.1:1"}
	if err := d.ValidateConfig(ctx, down); status.Code(err) != codes.Unavailable {
		t.Errorf("unreachable etcd: %v, want Unavailable", err)
	}

	tenant := datastore.Tenant{Namespace: "ns", Name: "a", UID: "uid-a", Schema: "ns_a", Username: "ns_a"}
	if _, err := d.EnsureTenant(ctx, etcd.Config(), tenant); err != nil {
		t.Fatal(err)
	}
	weak := etcd.Config()
	kp := testkit.IssueClient(t, testkit.KeyPair{Cert: etcd.CACert, Key: etcd.CAKey}, "ns_a")
	weak.ClientCert, weak.ClientKey = kp.Cert, kp.Key
	if err := d.ValidateConfig(ctx, weak); status.Code(err) != codes.PermissionDenied {
		t.Errorf("non-root credentials: %v, want PermissionDenied", err)
	}
}
