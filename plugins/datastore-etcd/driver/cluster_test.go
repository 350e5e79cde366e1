package driver

import (
	"testing"

	"go.etcd.io/etcd/api/v3/authpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The roles' permissions are kept between calls (cluster.reaching), and moved on by the
// plugin's own changes; a change made by anyone else (here an operator, as root) is seen by the
// next tenant all the same: a new role reaching its prefix, and a tenant role the plugin made
// and knows, widened since. Both refuse the new tenant and leave everything as it was, and the
// first tenants' data survives.
func TestRolesChangedByOthersAreSeen(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	a := tenant("ns", "a", "uid-a", "s_a", "u_a")
	b := tenant("ns", "b", "uid-b", "s_b", "u_b")
	if _, err := e.d.EnsureTenant(ctx, e.cfg, a); err != nil { // reads every role
		t.Fatal(err)
	}
	if _, err := e.d.EnsureTenant(ctx, e.cfg, b); err != nil { // from what the plugin keeps
		t.Fatal(err)
	}
	e.put(t, "/s_a/registry/x", "a's data")

	grantRead := func(role, prefix string) {
		t.Helper()
		if _, err := e.root.RoleGrantPermission(ctx, role, prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(authpb.READ)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.root.RoleAdd(ctx, "snoop"); err != nil {
		t.Fatal(err)
	}
	grantRead("snoop", "/s_c/")
	before := e.dump(t)
	_, err := e.d.EnsureTenant(ctx, e.cfg, tenant("ns", "c", "uid-c", "s_c", "u_c"))
	wantOwned(t, err, "tenant.schema", "snoop")
	if after := e.dump(t); after != before {
		t.Fatalf("the refused EnsureTenant changed the datastore:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// A tenant succeeds in between (the plugin's own changes move the kept roles on), then
	// an operator widens a's role.
	if _, err := e.d.EnsureTenant(ctx, e.cfg, tenant("ns", "e", "uid-e", "s_e", "u_e")); err != nil {
		t.Fatal(err)
	}
	grantRead("u_a", "/s_d/")
	before = e.dump(t)
	_, err = e.d.EnsureTenant(ctx, e.cfg, tenant("ns", "d", "uid-d", "s_d", "u_d"))
	wantOwned(t, err, "tenant.schema", "u_a")
	if after := e.dump(t); after != before {
		t.Fatalf("the refused EnsureTenant changed the datastore:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if r, err := e.root.Get(ctx, "/s_a/registry/x"); err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "a's data" {
		t.Fatalf("a's data after the refusals: %v, %v", r, err)
	}
}
