package driver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// env is a real etcd (TLS, client certificates, auth enabled) with a driver and a root client.
type env struct {
	etcd *testkit.Etcd
	d    *Driver
	cfg  datastore.Config
	root *clientv3.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	etcd := testkit.StartEtcd(t)
	d := New()
	t.Cleanup(d.Close)
	return &env{etcd: etcd, d: d, cfg: etcd.Config(), root: etcd.Client(t)}
}

func tenant(ns, name, uid, schema, user string) datastore.Tenant {
	return datastore.Tenant{Namespace: ns, Name: name, UID: uid, Schema: schema, Username: user}
}

// as connects with a client certificate for cn, as the tenant's kube-apiserver does.
func (e *env) as(t *testing.T, cn string) *clientv3.Client {
	t.Helper()
	kp := testkit.IssueClient(t, testkit.KeyPair{Cert: e.etcd.CACert, Key: e.etcd.CAKey}, cn)
	pair, err := tls.X509KeyPair(kp.Cert, kp.Key)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(e.etcd.CACert)
	var eps []string
	for _, ep := range e.etcd.Endpoints {
		eps = append(eps, "https://"+ep)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		TLS: &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: roots, MinVersion: tls.VersionTLS12},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// dump describes the whole datastore: every key with its value and revision, every user with its
// roles, every role with its grants. Equal dumps mean nothing changed.
func (e *env) dump(t *testing.T) string {
	t.Helper()
	ctx := t.Context()
	var b strings.Builder
	kvs, err := e.root.Get(ctx, "\x00", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range kvs.Kvs {
		fmt.Fprintf(&b, "key %q = %q @%d\n", kv.Key, kv.Value, kv.ModRevision)
	}
	users, err := e.root.UserList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users.Users {
		r, err := e.root.UserGet(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "user %q roles %q\n", u, r.Roles)
	}
	roles, err := e.root.RoleList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles.Roles {
		g, err := e.root.RoleGet(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "role %q grants %s\n", r, describe(g.Perm))
	}
	return b.String()
}

// residue lists what is left of tn: its user, its role, keys under its prefix, its owner records.
func (e *env) residue(t *testing.T, tn datastore.Tenant) []string {
	t.Helper()
	ctx := t.Context()
	var out []string
	if _, err := e.root.UserGet(ctx, tn.Username); !errors.Is(err, rpctypes.ErrUserNotFound) {
		out = append(out, fmt.Sprintf("user %q (%v)", tn.Username, err))
	}
	if _, err := e.root.RoleGet(ctx, tn.Username); !errors.Is(err, rpctypes.ErrRoleNotFound) {
		out = append(out, fmt.Sprintf("role %q (%v)", tn.Username, err))
	}
	for _, k := range []string{"/" + tn.Schema + "/", schemaKey(tn), userKey(tn)} {
		r, err := e.root.Get(ctx, k, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if r.Count > 0 {
			out = append(out, fmt.Sprintf("%d keys under %q", r.Count, k))
		}
	}
	return out
}

func (e *env) put(t *testing.T, key, value string) {
	t.Helper()
	if _, err := e.root.Put(t.Context(), key, value); err != nil {
		t.Fatal(err)
	}
}

// legacy provisions tn the way releases without owner records did: role, grant, user, binding.
func (e *env) legacy(t *testing.T, tn datastore.Tenant) {
	t.Helper()
	ctx := t.Context()
	prefix := "/" + tn.Schema + "/"
	steps := []func() error{
		func() error { _, err := e.root.RoleAdd(ctx, tn.Username); return err },
		func() error {
			_, err := e.root.RoleGrantPermission(ctx, tn.Username, prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(authpb.READWRITE))
			return err
		},
		func() error {
			_, err := e.root.UserAddWithOptions(ctx, tn.Username, "", &clientv3.UserAddOptions{NoPassword: true})
			return err
		},
		func() error { _, err := e.root.UserGrantRole(ctx, tn.Username, tn.Username); return err },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
}

// wantOwned checks that err is an *sdk.OwnedError on field whose message contains every
// string of names (the owner, or the roles in the way).
func wantOwned(t *testing.T, err error, field string, names ...string) {
	t.Helper()
	var oe *sdk.OwnedError
	if !errors.As(err, &oe) {
		t.Fatalf("got %v, want an OwnedError on %s", err, field)
	}
	if oe.Field != field {
		t.Errorf("OwnedError on %q, want %q: %v", oe.Field, field, oe)
	}
	for _, n := range names {
		if !strings.Contains(oe.Message, n) {
			t.Errorf("OwnedError does not name %q: %v", n, oe)
		}
	}
}

func TestTwinsAreRefusedAndCannotDeleteTheVictim(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	victim := tenant("ns", "a", "uid-a", "t_a", "u_a")
	if _, err := e.d.EnsureTenant(ctx, e.cfg, victim); err != nil {
		t.Fatal(err)
	}
	va := e.as(t, victim.Username)
	if _, err := va.Put(ctx, "/t_a/registry/secret", "victim"); err != nil {
		t.Fatal(err)
	}
	before := e.dump(t)
	owner := victim.Owner().String()
	for _, tc := range []struct {
		name  string
		twin  datastore.Tenant
		field string
	}{
		{"same schema, another user", tenant("ns", "b", "uid-b", "t_a", "u_b"), "tenant.schema"},
		{"same schema and user, another uid", tenant("ns", "a", "uid-a-recreated", "t_a", "u_a"), "tenant.schema"},
		{"another schema, same user", tenant("ns", "c", "uid-c", "t_c", "u_a"), "tenant.username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.d.EnsureTenant(ctx, e.cfg, tc.twin)
			wantOwned(t, err, tc.field, owner)
			if after := e.dump(t); after != before {
				t.Fatalf("the refused EnsureTenant changed the datastore:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if err := e.d.DeleteTenant(ctx, e.cfg, tc.twin); err != nil {
				t.Fatalf("the twin's DeleteTenant: %v", err)
			}
			if after := e.dump(t); after != before {
				t.Fatalf("the twin's DeleteTenant changed the datastore:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if r, err := va.Get(ctx, "/t_a/registry/secret"); err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "victim" {
				t.Fatalf("the victim reads its key: %v, %v", r, err)
			}
		})
	}
	if _, err := e.d.EnsureTenant(ctx, e.cfg, victim); err != nil {
		t.Fatalf("the victim's EnsureTenant after the twins: %v", err)
	}
}

func TestHalfProvisionedTenantIsDeletedWithoutResidue(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	recordBy := func(t *testing.T, tn datastore.Tenant) {
		v, err := json.Marshal(recordOf(tn))
		if err != nil {
			t.Fatal(err)
		}
		e.put(t, schemaKey(tn), string(v))
		e.put(t, userKey(tn), string(v))
	}
	for _, tc := range []struct {
		name string
		make func(t *testing.T, tn datastore.Tenant)
	}{
		{"role only, no record", func(t *testing.T, tn datastore.Tenant) {
			if _, err := e.root.RoleAdd(ctx, tn.Username); err != nil {
				t.Fatal(err)
			}
			e.put(t, "/"+tn.Schema+"/registry/x", "x")
		}},
		{"role with its grant, no record", func(t *testing.T, tn datastore.Tenant) {
			e.legacy(t, tn)
			if _, err := e.root.UserDelete(ctx, tn.Username); err != nil {
				t.Fatal(err)
			}
		}},
		{"user only, no record", func(t *testing.T, tn datastore.Tenant) {
			if _, err := e.root.UserAddWithOptions(ctx, tn.Username, "", &clientv3.UserAddOptions{NoPassword: true}); err != nil {
				t.Fatal(err)
			}
		}},
		{"records and role", func(t *testing.T, tn datastore.Tenant) {
			recordBy(t, tn)
			if _, err := e.root.RoleAdd(ctx, tn.Username); err != nil {
				t.Fatal(err)
			}
		}},
		{"records only", recordBy},
		{"records and keys, access already revoked (a retried delete)", func(t *testing.T, tn datastore.Tenant) {
			if _, err := e.d.EnsureTenant(ctx, e.cfg, tn); err != nil {
				t.Fatal(err)
			}
			e.put(t, "/"+tn.Schema+"/registry/x", "x")
			if _, err := e.root.UserDelete(ctx, tn.Username); err != nil {
				t.Fatal(err)
			}
			if _, err := e.root.RoleDelete(ctx, tn.Username); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.NewReplacer(" ", "_", ",", "", "(", "", ")", "").Replace(tc.name)
			tn := tenant("ns", "half", "uid-"+id, "s_"+id, "u_"+id)
			tc.make(t, tn)
			if err := e.d.DeleteTenant(ctx, e.cfg, tn); err != nil {
				t.Fatal(err)
			}
			if r := e.residue(t, tn); len(r) > 0 {
				t.Fatalf("DeleteTenant left: %s", strings.Join(r, ", "))
			}
		})
	}
}

func TestOwnerRecordsAreUnreadableByTenants(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	a := tenant("ns", "a", "uid-a", "t_a", "u_a")
	if _, err := e.d.EnsureTenant(ctx, e.cfg, a); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{schemaKey(a), userKey(a)} {
		r, err := e.root.Get(ctx, k)
		if err != nil || len(r.Kvs) != 1 {
			t.Fatalf("root reads %s: %v, %v", k, r, err)
		}
		var rec record
		if err := json.Unmarshal(r.Kvs[0].Value, &rec); err != nil || rec != recordOf(a) {
			t.Fatalf("record %s = %s (%v), want %+v", k, r.Kvs[0].Value, err, recordOf(a))
		}
	}
	cli := e.as(t, a.Username)
	if _, err := cli.Put(ctx, "/t_a/registry/own", "ok"); err != nil {
		t.Fatalf("the tenant writes its own prefix: %v", err)
	}
	for name, op := range map[string]func() error{
		"get the schema record": func() error { _, err := cli.Get(ctx, schemaKey(a)); return err },
		"get the user record":   func() error { _, err := cli.Get(ctx, userKey(a)); return err },
		"list every record":     func() error { _, err := cli.Get(ctx, ownerKeys, clientv3.WithPrefix()); return err },
		"list the keyspace":     func() error { _, err := cli.Get(ctx, "\x00", clientv3.WithFromKey()); return err },
		"overwrite a record":    func() error { _, err := cli.Put(ctx, schemaKey(a), "{}"); return err },
		"delete a record":       func() error { _, err := cli.Delete(ctx, userKey(a)); return err },
		"write a record for another schema": func() error {
			_, err := cli.Put(ctx, schemaOwnerKey+"t_b", "{}")
			return err
		},
	} {
		if err := op(); !errors.Is(err, rpctypes.ErrPermissionDenied) {
			t.Errorf("tenant: %s: %v, want permission denied", name, err)
		}
	}
}

func TestConcurrentEnsureTenantForOneSchemaHasOneWinner(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	// Two drivers with their own connections, as two plugin processes would have.
	d2 := New()
	t.Cleanup(d2.Close)
	drivers := []*Driver{e.d, d2}
	for round := range 10 {
		schema := fmt.Sprintf("race_%d", round)
		users := []string{schema, schema} // same schema and user, another uid
		if round%2 == 1 {
			users = []string{schema + "_x", schema + "_y"} // same schema, another user
		}
		var tenants [2]datastore.Tenant
		var errs [2]error
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 2 {
			tenants[i] = tenant("ns", fmt.Sprintf("%s-%d", schema, i), fmt.Sprintf("uid-%d-%d", round, i), schema, users[i])
			wg.Go(func() {
				<-start
				_, errs[i] = drivers[i].EnsureTenant(ctx, e.cfg, tenants[i])
			})
		}
		close(start)
		wg.Wait()
		winners := 0
		for i := range 2 {
			if errs[i] == nil {
				winners++
				loser := tenants[1-i]
				wantOwned(t, errs[1-i], "tenant.schema")
				r, err := e.root.Get(ctx, schemaKey(tenants[i]))
				var rec record
				if err != nil || len(r.Kvs) != 1 || json.Unmarshal(r.Kvs[0].Value, &rec) != nil || rec != recordOf(tenants[i]) {
					t.Errorf("round %d: schema record %v (%v), want the winner's %+v", round, r, err, recordOf(tenants[i]))
				}
				if loser.Username != tenants[i].Username {
					if res := e.residue(t, datastore.Tenant{Schema: "-", Username: loser.Username}); len(res) > 0 {
						t.Errorf("round %d: the loser got %s", round, strings.Join(res, ", "))
					}
				}
				cli := e.as(t, tenants[i].Username)
				if _, err := cli.Put(ctx, "/"+schema+"/registry/x", "winner"); err != nil {
					t.Errorf("round %d: the winner writes its prefix: %v", round, err)
				}
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: %d winners (errors %v, %v), want exactly 1", round, winners, errs[0], errs[1])
		}
	}
}

func TestLegacySliceIsAdopted(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	a := tenant("ns", "a", "uid-a", "t_a", "u_a")
	e.legacy(t, a)
	e.put(t, "/t_a/registry/old", "kept")
	// An operator's role reading every key is wider than any tenant and does not block adoption.
	if _, err := e.root.RoleAdd(ctx, "backup"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.root.RoleGrantPermission(ctx, "backup", "\x00", "\x00", clientv3.PermissionType(authpb.READ)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.EnsureTenant(ctx, e.cfg, a); err != nil {
		t.Fatalf("EnsureTenant of an unrecorded slice: %v", err)
	}
	r, err := e.root.Get(ctx, schemaKey(a))
	var rec record
	if err != nil || len(r.Kvs) != 1 || json.Unmarshal(r.Kvs[0].Value, &rec) != nil || rec != recordOf(a) {
		t.Fatalf("schema record after adoption: %v, %v", r, err)
	}
	if g, err := e.as(t, a.Username).Get(ctx, "/t_a/registry/old"); err != nil || len(g.Kvs) != 1 {
		t.Fatalf("the adopted tenant reads its old key: %v, %v", g, err)
	}
	_, err = e.d.EnsureTenant(ctx, e.cfg, tenant("ns", "a", "uid-other", "t_a", "u_a"))
	wantOwned(t, err, "tenant.schema", a.Owner().String())
	if err := e.d.DeleteTenant(ctx, e.cfg, a); err != nil {
		t.Fatal(err)
	}
	if res := e.residue(t, a); len(res) > 0 {
		t.Fatalf("DeleteTenant left: %s", strings.Join(res, ", "))
	}
}

func TestLegacySliceReachedByOthersIsNotAdopted(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	role := func(t *testing.T, name, key, end string, holders ...string) {
		if _, err := e.root.RoleAdd(ctx, name); err != nil {
			t.Fatal(err)
		}
		if _, err := e.root.RoleGrantPermission(ctx, name, key, end, clientv3.PermissionType(authpb.READ)); err != nil {
			t.Fatal(err)
		}
		for _, u := range holders {
			if _, err := e.root.UserAddWithOptions(ctx, u, "", &clientv3.UserAddOptions{NoPassword: true}); err != nil && !errors.Is(err, rpctypes.ErrUserAlreadyExist) {
				t.Fatal(err)
			}
			if _, err := e.root.UserGrantRole(ctx, u, name); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, tc := range []struct {
		name  string
		setup func(t *testing.T, tn datastore.Tenant)
		field string
		names []string
	}{
		{"another role reads part of the prefix", func(t *testing.T, tn datastore.Tenant) {
			p := "/" + tn.Schema + "/registry/secrets/"
			role(t, "spy_0", p, clientv3.GetPrefixRangeEnd(p), "spy_0")
		}, "tenant.schema", []string{"spy_0"}},
		{"another role grants the prefix (a legacy twin with another user)", func(t *testing.T, tn datastore.Tenant) {
			p := "/" + tn.Schema + "/"
			role(t, "twin_1", p, clientv3.GetPrefixRangeEnd(p), "twin_1")
		}, "tenant.schema", []string{"twin_1"}},
		{"another role grants one key of the prefix", func(t *testing.T, tn datastore.Tenant) {
			role(t, "one_2", "/"+tn.Schema+"/registry/x", "")
		}, "tenant.schema", []string{"one_2"}},
		{"the user holds another role", func(t *testing.T, tn datastore.Tenant) {
			role(t, "other_3", "/elsewhere/", "/elsewhere0", tn.Username)
		}, "tenant.username", []string{"other_3"}},
		{"another user holds the tenant's role", func(t *testing.T, tn datastore.Tenant) {
			if _, err := e.root.UserAddWithOptions(ctx, "friend_4", "", &clientv3.UserAddOptions{NoPassword: true}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.root.UserGrantRole(ctx, "friend_4", tn.Username); err != nil {
				t.Fatal(err)
			}
		}, "tenant.username", []string{"friend_4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn := tenant("ns", fmt.Sprintf("t%d", i), fmt.Sprintf("uid-%d", i), fmt.Sprintf("s_%d", i), fmt.Sprintf("u_%d", i))
			e.legacy(t, tn)
			e.put(t, "/"+tn.Schema+"/registry/x", "data")
			tc.setup(t, tn)
			before := e.dump(t)
			_, err := e.d.EnsureTenant(ctx, e.cfg, tn)
			wantOwned(t, err, tc.field, tc.names...)
			if after := e.dump(t); after != before {
				t.Fatalf("the refused EnsureTenant changed the datastore:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
	// A prefix someone else reaches keeps its keys through DeleteTenant.
	tn := tenant("ns", "t0", "uid-0", "s_0", "u_0")
	if err := e.d.DeleteTenant(ctx, e.cfg, tn); err != nil {
		t.Fatal(err)
	}
	if r, err := e.root.Get(ctx, "/s_0/registry/x"); err != nil || len(r.Kvs) != 1 {
		t.Fatalf("keys under a prefix another role reads, after DeleteTenant: %v, %v", r, err)
	}
	if r, err := e.root.RoleGet(ctx, "spy_0"); err != nil || len(r.Perm) != 1 {
		t.Fatalf("the other role after DeleteTenant: %v, %v", r, err)
	}
}

func TestUIDLessRecordIsTakenOverByItsOwner(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	old := tenant("ns", "a", "", "t_a", "u_a") // from a core that sends no uid
	if _, err := e.d.EnsureTenant(ctx, e.cfg, old); err != nil {
		t.Fatal(err)
	}
	_, err := e.d.EnsureTenant(ctx, e.cfg, tenant("ns", "b", "", "t_a", "u_b"))
	wantOwned(t, err, "tenant.schema", "ns/a")
	withUID := tenant("ns", "a", "uid-a", "t_a", "u_a")
	if _, err := e.d.EnsureTenant(ctx, e.cfg, withUID); err != nil {
		t.Fatalf("the same TenantControlPlane with its uid: %v", err)
	}
	for _, k := range []string{schemaKey(withUID), userKey(withUID)} {
		r, err := e.root.Get(ctx, k)
		var rec record
		if err != nil || len(r.Kvs) != 1 || json.Unmarshal(r.Kvs[0].Value, &rec) != nil || rec != recordOf(withUID) {
			t.Fatalf("%s after the takeover: %v, %v", k, r, err)
		}
	}
	_, err = e.d.EnsureTenant(ctx, e.cfg, old)
	wantOwned(t, err, "tenant.schema", withUID.Owner().String())
}

func TestReaches(t *testing.T) {
	const p = "/a/"
	for _, tc := range []struct {
		key, end string
		want     bool
	}{
		{"/a/", "/a0", true},     // the tenant's own grant
		{"/a/x", "", true},       // one key inside
		{"/a/x/", "/a/x0", true}, // a part
		{"/a", "/a/z", true},     // overlaps the start
		{"/a/m", "/b", true},     // overlaps the end
		{"/a/", "\x00", false},   // from the prefix to the end: wider
		{"/", "0", false},        // every slash key: wider
		{"\x00", "\x00", false},  // everything: wider
		{"/a0", "/b", false},     // after
		{"/", "/a/", false},      // before
		{"/ab/", "/ab0", false},  // another tenant
		{"/a0", "", false},       // one key after
		{"kamaji/owners/", "kamaji/owners0", false},
	} {
		if got := reaches(&authpb.Permission{Key: []byte(tc.key), RangeEnd: []byte(tc.end)}, p); got != tc.want {
			t.Errorf("reaches([%q, %q), %q) = %v, want %v", tc.key, tc.end, p, got, tc.want)
		}
	}
}

func TestValidateTenantNamesTheField(t *testing.T) {
	ca := testkit.NewCA(t)
	admin := testkit.IssueClient(t, ca, "kamaji-admin")
	// Nothing listens there: every refusal must come before any network call.
	cfg := datastore.Config{Driver: "etcd", Endpoints: []string{"127.0.0.1:1"}, CACert: ca.Cert, CAKey: ca.Key, ClientCert: admin.Cert, ClientKey: admin.Key}
	withPassword := cfg
	withPassword.Username, withPassword.Password = "etcd-admin", "secret"
	valid := tenant("ns", "a", "uid-a", "t_ns_a_1234abcd", "t_ns_a_1234abcd")
	d := New()
	t.Cleanup(d.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := d.ValidateTenant(ctx, cfg, valid); err != nil {
		t.Fatalf("valid tenant: %v", err)
	}
	for _, tc := range []struct {
		name   string
		cfg    datastore.Config
		mutate func(*datastore.Tenant)
		field  string
	}{
		{"empty schema", cfg, func(t *datastore.Tenant) { t.Schema = "" }, "tenant.schema"},
		{"slash in schema", cfg, func(t *datastore.Tenant) { t.Schema = "a/b" }, "tenant.schema"},
		{"NUL in schema", cfg, func(t *datastore.Tenant) { t.Schema = "a\x00b" }, "tenant.schema"},
		{"dot schema", cfg, func(t *datastore.Tenant) { t.Schema = "." }, "tenant.schema"},
		{"dot-dot schema", cfg, func(t *datastore.Tenant) { t.Schema = ".." }, "tenant.schema"},
		{"newline in schema", cfg, func(t *datastore.Tenant) { t.Schema = "a\nb" }, "tenant.schema"},
		{"invalid UTF-8 schema", cfg, func(t *datastore.Tenant) { t.Schema = "a\xffb" }, "tenant.schema"},
		{"long schema", cfg, func(t *datastore.Tenant) { t.Schema = strings.Repeat("s", maxNameLen+1) }, "tenant.schema"},
		{"empty username", cfg, func(t *datastore.Tenant) { t.Username = "" }, "tenant.username"},
		{"root", cfg, func(t *datastore.Tenant) { t.Username = "root" }, "tenant.username"},
		{"the admin certificate's CN", cfg, func(t *datastore.Tenant) { t.Username = "kamaji-admin" }, "tenant.username"},
		{"the admin username", withPassword, func(t *datastore.Tenant) { t.Username = "etcd-admin" }, "tenant.username"},
		{"tab in username", cfg, func(t *datastore.Tenant) { t.Username = "a\tb" }, "tenant.username"},
		{"invalid UTF-8 username", cfg, func(t *datastore.Tenant) { t.Username = "\xc3" }, "tenant.username"},
		{"long username", cfg, func(t *datastore.Tenant) { t.Username = strings.Repeat("u", maxNameLen+1) }, "tenant.username"},
	} {
		tn := valid
		tc.mutate(&tn)
		calls := map[string]func() error{
			"ValidateTenant": func() error { return d.ValidateTenant(ctx, tc.cfg, tn) },
			"EnsureTenant":   func() error { _, err := d.EnsureTenant(ctx, tc.cfg, tn); return err },
			"DeleteTenant":   func() error { return d.DeleteTenant(ctx, tc.cfg, tn) },
		}
		for call, f := range calls {
			var fe *sdk.FieldError
			if err := f(); !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("%s: %s = %v, want a FieldError on %s", tc.name, call, err, tc.field)
			}
		}
	}
	if n := d.pool.len(); n != 0 {
		t.Errorf("%d connections opened for refused tenants, want none", n)
	}
}
