package backup_test

// A tenant's keys backed up from a real etcd slice through the etcd plugin, restored through
// the PostgreSQL (kine) plugin and through the etcd plugin into new slices: the same keys and
// values come back, a second tenant on the same backends is untouched, and a restore into a slice
// that holds keys is refused before anything is written.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhcp/kamaji/core/backup"
	"github.com/openhcp/kamaji/core/migration"
	"github.com/openhcp/kamaji/core/testenv"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit"
)

func TestBackupRestoreAcrossDrivers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	etcd := testkit.StartEtcd(t)
	root := etcd.Client(t)
	ep, pp := testenv.DataStorePlugin(t, "datastore-etcd", "etcd"), testenv.DataStorePlugin(t, "datastore-postgres", "PostgreSQL")
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	pg := testenv.PostgresAdmin(t, "kamaji_bk_"+id)
	tenant := func(name string) datastore.Tenant {
		return datastore.Tenant{Namespace: "ns", Name: name, Schema: "t_" + name + "_" + id, Username: "t_" + name + "_" + id, UID: "uid-" + name + "-" + id}
	}
	ensure := func(p *datastore.Client, cfg datastore.Config, tn datastore.Tenant) (migration.Slice, datastore.Connection) {
		t.Helper()
		conn, err := p.EnsureTenant(ctx, cfg, tn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.DeleteTenant(context.Background(), cfg, tn) })
		return migration.Slice{Plugin: p, Config: cfg, Tenant: tn, Layout: migration.LayoutOf(conn)}, conn
	}
	put := func(prefix string, n int, tag string) map[string]string {
		t.Helper()
		kv := map[string]string{}
		for i := range n {
			k := fmt.Sprintf("configmaps/apps/cm-%03d", i)
			kv[k] = fmt.Sprintf("%s %d %s", tag, i, strings.Repeat("x", i))
			if _, err := root.Put(ctx, prefix+k, kv[k]); err != nil {
				t.Fatal(err)
			}
		}
		return kv
	}
	// The tenant to back up, and a neighbour on the same etcd.
	src, srcConn := ensure(ep, etcd.Config(), tenant("src"))
	want := put(srcConn.Etcd.Prefix, 250, "src")
	neighbour, otherConn := ensure(ep, etcd.Config(), tenant("other"))
	theirs := put(otherConn.Etcd.Prefix, 40, "other")
	theirSum, err := migration.Sum(ctx, neighbour)
	if err != nil {
		t.Fatal(err)
	}

	var archive bytes.Buffer
	taken, err := backup.Backup(ctx, src, &archive, backup.Header{Tenant: backup.TenantRef{Namespace: "ns", Name: "src"}, KubernetesVersion: "v1.37.2", DataStore: "etcd", Driver: "etcd"})
	if err != nil {
		t.Fatal(err)
	}
	if taken.Keys != 250 {
		t.Fatalf("backed up %s, want 250 keys", taken)
	}
	if _, tr, err := backup.Verify(bytes.NewReader(archive.Bytes())); err != nil || tr.Keys != 250 {
		t.Fatalf("Verify: %+v %v", tr, err)
	}

	restore := func(dst migration.Slice) (migration.Digest, error) {
		r, err := backup.NewReader(bytes.NewReader(archive.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		return backup.Restore(ctx, r, dst)
	}
	// Into PostgreSQL (kine layout), then into another etcd slice.
	pgSide, _ := ensure(pp, pg, tenant("topg"))
	if got, err := restore(pgSide); err != nil || !got.Equal(taken) {
		t.Fatalf("restore into PostgreSQL: %s, %v; want %s", got, err, taken)
	}
	found := 0
	for kvs, err := range pp.Export(ctx, pg, tenant("topg")) {
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range kvs {
			if k, ok := strings.CutPrefix(string(kv.Key), "registry/"); ok && want[k] == string(kv.Value) {
				found++
			}
		}
	}
	if found != 250 {
		t.Fatalf("%d of 250 keys are in PostgreSQL under registry/ with their values", found)
	}
	etcdSide, etcdConn := ensure(ep, etcd.Config(), tenant("toetcd"))
	if got, err := restore(etcdSide); err != nil || !got.Equal(taken) {
		t.Fatalf("restore into etcd: %s, %v; want %s", got, err, taken)
	}
	resp, err := root.Get(ctx, etcdConn.Etcd.Prefix, clientv3.WithPrefix())
	if err != nil || resp.Count != 250 {
		t.Fatalf("the restored etcd slice holds %d keys (%v)", resp.Count, err)
	}
	for _, kv := range resp.Kvs {
		if k := strings.TrimPrefix(string(kv.Key), etcdConn.Etcd.Prefix); want[k] != string(kv.Value) {
			t.Errorf("%s came back as %q", k, kv.Value)
		}
	}

	// A second restore into a slice that now holds keys is refused, and writes nothing.
	var notEmpty *backup.ErrNotEmpty
	if _, err := restore(etcdSide); !errors.As(err, &notEmpty) || notEmpty.Keys != 250 {
		t.Fatalf("restore into a full slice: %v", err)
	}
	if got, err := migration.Sum(ctx, etcdSide); err != nil || !got.Equal(taken) {
		t.Fatalf("after the refused restore the slice holds %s (%v)", got, err)
	}
	// The neighbour was never touched.
	if got, err := migration.Sum(ctx, neighbour); err != nil || !got.Equal(theirSum) {
		t.Fatalf("the other tenant's slice holds %s (%v), had %s", got, err, theirSum)
	}
	other, err := root.Get(ctx, otherConn.Etcd.Prefix, clientv3.WithPrefix())
	if err != nil || other.Count != int64(len(theirs)) {
		t.Fatalf("the other tenant holds %d keys (%v), had %d", other.Count, err, len(theirs))
	}
	// And the source is still whole.
	if got, err := migration.Sum(ctx, src); err != nil || !got.Equal(taken) {
		t.Fatalf("the source holds %s (%v) after its backup", got, err)
	}
}
