package migration_test

// The copy between two real drivers: keys written as kube-apiserver writes them into an etcd
// slice go through the etcd plugin's Export, the key translation and the PostgreSQL (kine)
// plugin's Import, and back into another etcd slice, unchanged; the digests of every side agree.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhcp/kamaji/core/migration"
	"github.com/openhcp/kamaji/core/testenv"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit"
)

func TestCopyEtcdToPostgreSQLAndBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	etcd := testkit.StartEtcd(t)
	root := etcd.Client(t)
	ep, pp := testenv.DataStorePlugin(t, "datastore-etcd", "etcd"), testenv.DataStorePlugin(t, "datastore-postgres", "PostgreSQL")
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	pg := testenv.PostgresAdmin(t, "kamaji_mig_"+id)
	tenant := datastore.Tenant{Namespace: "ns", Name: "mover", Schema: "t_mig_" + id, Username: "t_mig_" + id, UID: "uid-" + id}
	back := datastore.Tenant{Namespace: "ns", Name: "back", Schema: "t_back_" + id, Username: "t_back_" + id, UID: "uid-back-" + id}
	src, err := ep.EnsureTenant(ctx, etcd.Config(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.DeleteTenant(context.Background(), etcd.Config(), tenant) })
	// As kube-apiserver with --etcd-prefix=/<schema>/ writes them.
	want := map[string]string{}
	for i := range 300 {
		k := fmt.Sprintf("configmaps/apps/cm-%03d", i)
		want[k] = fmt.Sprintf("value %d %s", i, strings.Repeat("x", i))
		if _, err := root.Put(ctx, src.Etcd.Prefix+k, want[k]); err != nil {
			t.Fatal(err)
		}
	}
	dst, err := pp.EnsureTenant(ctx, pg, tenant)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pp.DeleteTenant(context.Background(), pg, tenant) })
	if dst.Kine == nil {
		t.Fatalf("the PostgreSQL plugin answered %+v, want a kine sidecar", dst)
	}
	etcdSide := migration.Slice{Plugin: ep, Config: etcd.Config(), Tenant: tenant, Layout: migration.LayoutOf(src)}
	pgSide := migration.Slice{Plugin: pp, Config: pg, Tenant: tenant, Layout: migration.LayoutOf(dst)}

	copied, err := migration.Copy(ctx, etcdSide, pgSide)
	if err != nil {
		t.Fatal(err)
	}
	if copied.Keys != 300 {
		t.Fatalf("copied %s, want 300 keys", copied)
	}
	got, err := migration.Sum(ctx, pgSide)
	if err != nil || !got.Equal(copied) {
		t.Fatalf("PostgreSQL holds %s (%v), copied %s", got, err, copied)
	}
	// kine's layout: the apiserver's default prefix /registry in front of every key.
	found := 0
	for kvs, err := range pp.Export(ctx, pg, tenant) {
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range kvs {
			if k, ok := strings.CutPrefix(string(kv.Key), "registry/"); ok && want[k] == string(kv.Value) {
				found++
			}
		}
	}
	if found != 300 {
		t.Fatalf("%d of 300 keys are in PostgreSQL under registry/ with their values", found)
	}

	// And back into another etcd slice.
	out, err := ep.EnsureTenant(ctx, etcd.Config(), back)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.DeleteTenant(context.Background(), etcd.Config(), back) })
	again, err := migration.Copy(ctx, pgSide, migration.Slice{Plugin: ep, Config: etcd.Config(), Tenant: back, Layout: migration.LayoutOf(out)})
	if err != nil || !again.Equal(copied) {
		t.Fatalf("PostgreSQL to etcd: %s (%v), want %s", again, err, copied)
	}
	resp, err := root.Get(ctx, out.Etcd.Prefix, clientv3.WithPrefix())
	if err != nil || resp.Count != 300 {
		t.Fatalf("the second etcd slice holds %v keys (%v)", resp.Count, err)
	}
	for _, kv := range resp.Kvs {
		k := strings.TrimPrefix(string(kv.Key), out.Etcd.Prefix)
		if want[k] != string(kv.Value) {
			t.Errorf("%s came back as %q", k, kv.Value)
		}
	}
}
