package driver_test

import (
	"errors"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"example.com/kamaji-datastore-example/driver"
	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// What no owner record names was made by someone else: EnsureTenant refuses it with
// ALREADY_EXISTS (an *sdk.OwnedError) naming what is in the way, and changes nothing; the
// tenant's DeleteTenant removes none of it. The conformance kit's twins all come with records;
// these do not.
func TestUnrecordedSlicesAreNotTakenOver(t *testing.T) {
	etcd := testkit.StartEtcd(t)
	ctx, cfg, root := t.Context(), etcd.ConfigFor(driver.DriverName), etcd.Client(t)
	d := driver.New()
	t.Cleanup(d.Close)

	if _, err := root.UserAddWithOptions(ctx, "u_user", "", &clientv3.UserAddOptions{NoPassword: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.RoleAdd(ctx, "u_role"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Put(ctx, "/t_keys/registry/x", "someone's"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.RoleAdd(ctx, "backup-t_granted"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.RoleGrantPermission(ctx, "backup-t_granted", "/t_granted/", clientv3.GetPrefixRangeEnd("/t_granted/"), clientv3.PermissionType(clientv3.PermRead)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		schema, user, want string
	}{
		{"t_free1", "u_user", `tenant.username: etcd user "u_user" exists and no owner record names it`},
		{"t_free2", "u_role", `tenant.username: etcd role "u_role" exists and no owner record names it`},
		{"t_keys", "u_free1", `tenant.schema: 1 keys exist under etcd prefix "/t_keys/"`},
		{"t_granted", "u_free2", `tenant.schema: etcd role "backup-t_granted" grants "/t_granted/"`},
	} {
		tenant := datastore.Tenant{Namespace: "ns", Name: "n", UID: "uid-" + tc.schema, Schema: tc.schema, Username: tc.user}
		_, err := d.EnsureTenant(ctx, cfg, tenant)
		var oe *sdk.OwnedError
		if !errors.As(err, &oe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("EnsureTenant(%s, %s) = %v, want an OwnedError with %q", tc.schema, tc.user, err, tc.want)
		}
		if err := d.DeleteTenant(ctx, cfg, tenant); err != nil {
			t.Errorf("DeleteTenant(%s, %s) = %v, want success (it owns nothing)", tc.schema, tc.user, err)
		}
	}
	// Nothing was recorded, and what was there still is.
	if recs, err := root.Get(ctx, "example-etcd/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || recs.Count != 0 {
		t.Errorf("owner records: %v, %v; want none", recs, err)
	}
	if _, err := root.UserGet(ctx, "u_user"); err != nil {
		t.Errorf("user u_user: %v", err)
	}
	if _, err := root.RoleGet(ctx, "u_role"); err != nil {
		t.Errorf("role u_role: %v", err)
	}
	if r, err := root.Get(ctx, "/t_keys/registry/x"); err != nil || len(r.Kvs) != 1 {
		t.Errorf("key /t_keys/registry/x: %v, %v", r, err)
	}
}

// A record binds a schema and a user together: the owner of a slice asking for its schema with
// another user is refused, naming the user the schema goes with.
func TestRecordBindsSchemaAndUser(t *testing.T) {
	etcd := testkit.StartEtcd(t)
	ctx, cfg := t.Context(), etcd.ConfigFor(driver.DriverName)
	d := driver.New()
	t.Cleanup(d.Close)
	owner := datastore.Tenant{Namespace: "ns", Name: "a", UID: "uid-a", Schema: "t_a", Username: "u_a"}
	if _, err := d.EnsureTenant(ctx, cfg, owner); err != nil {
		t.Fatal(err)
	}
	other := owner
	other.Username = "u_other"
	_, err := d.EnsureTenant(ctx, cfg, other)
	var oe *sdk.OwnedError
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), `etcd prefix "/t_a/" is owned by ns/a (uid uid-a), with user "u_a"`) {
		t.Fatalf("EnsureTenant with another user = %v", err)
	}
	if err := d.DeleteTenant(ctx, cfg, owner); err != nil {
		t.Fatal(err)
	}
}
