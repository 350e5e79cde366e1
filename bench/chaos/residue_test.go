package main

import (
	"context"
	"slices"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhcp/kamaji/plugins/datastore-etcd/driver"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// The audit reads what the real etcd driver writes: tenants provisioned by it, some of them
// "deleted" from the Kubernetes side only (their slice left behind), one with a second slice.
func TestAuditAgainstTheEtcdDriver(t *testing.T) {
	ctx := context.Background()
	e := testkit.StartEtcd(t)
	cfg := e.Config()
	d := driver.New()
	t.Cleanup(d.Close)
	tenant := func(name, uid string) datastore.Tenant {
		return datastore.Tenant{Namespace: "default", Name: name, Schema: "default_" + name, Username: "default_" + name, UID: uid}
	}
	a, b, c := tenant("a", "uid-a"), tenant("b", "uid-b"), tenant("c", "uid-c")
	// b holds a second slice under another schema and user: a duplicate.
	b2 := datastore.Tenant{Namespace: "default", Name: "b", Schema: "default_b_again", Username: "default_b_again", UID: "uid-b"}
	for _, tn := range []datastore.Tenant{a, b, c, b2} {
		if _, err := d.EnsureTenant(ctx, cfg, tn); err != nil {
			t.Fatalf("EnsureTenant %s: %v", tn.Name, err)
		}
	}
	cli := e.Client(t)
	if _, err := cli.Put(ctx, "/default_a/registry/x", "1"); err != nil {
		t.Fatal(err)
	}

	s, err := readSlices(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Users) != 4 || len(s.Roles) != 4 || len(s.SchemaOwners) != 4 || s.UserOwners != 4 || s.TenantKeys != 1 {
		t.Fatalf("read %+v, want 4 users, roles, schema and user records, and 1 tenant key", s)
	}

	// c's TCP is gone, a and b live: c's user leaked and its slice is an orphan; b's second
	// user is one no TCP asks for as well.
	got := auditSlices(s, []liveTenant{{UID: "uid-a", Schema: a.Schema, Username: a.Username}, {UID: "uid-b", Schema: b.Schema, Username: b.Username}})
	if want := []string{"default_b_again", "default_c"}; !slices.Equal(got.LeakedUsers, want) {
		t.Errorf("leaked users %v, want %v", got.LeakedUsers, want)
	}
	if got.DuplicateSlices != 1 {
		t.Errorf("duplicate slices %d, want 1", got.DuplicateSlices)
	}
	if want := []string{"default_c"}; !slices.Equal(got.OrphanSlices, want) {
		t.Errorf("orphan slices %v, want %v", got.OrphanSlices, want)
	}
	if got.Missing != 0 {
		t.Errorf("missing %d, want 0", got.Missing)
	}
	// A live TCP whose slice is not there is missing.
	if got := auditSlices(s, []liveTenant{{UID: "uid-d", Schema: "default_d", Username: "default_d"}}); got.Missing != 1 {
		t.Errorf("missing %d, want 1", got.Missing)
	}

	// Once every tenant is deprovisioned and the data removed, nothing is left.
	for _, tn := range []datastore.Tenant{a, b, c, b2} {
		if err := d.DeleteTenant(ctx, cfg, tn); err != nil {
			t.Fatalf("DeleteTenant %s: %v", tn.Name, err)
		}
	}
	if _, err := cli.Delete(ctx, "/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	if s, err = readSlices(ctx, cli); err != nil {
		t.Fatal(err)
	}
	if r := s.residue(); r != 0 {
		t.Errorf("residue %d after every DeleteTenant, want 0: %+v", r, s)
	}
}
