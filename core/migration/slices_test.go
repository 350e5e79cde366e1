package migration_test

// Helpers of drivers_test.go: the four datastores, tenant slices on them, and data shaped as
// kube-apiserver writes it.

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/openhcp/kamaji/core/migration"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// store is one DataStore: a driver's plugin binary and the configuration of a real server.
type store struct {
	driver string
	plugin datastore.Plugin
	cfg    datastore.Config
}

// slice is a tenant's slice on a store, as migration.Copy sees it, and how its apiserver would
// connect.
type slice struct {
	migration.Slice
	conn datastore.Connection
}

// provision creates t's slice on s; the slice is deleted when the test ends, should the test
// stop before deleting it itself (DeleteTenant of an absent tenant succeeds).
func provision(ctx context.Context, t *testing.T, s *store, tenant datastore.Tenant) slice {
	t.Helper()
	conn, err := s.plugin.EnsureTenant(ctx, s.cfg, tenant)
	if err != nil {
		t.Fatalf("%s: EnsureTenant %s: %v", s.driver, tenant.Schema, err)
	}
	t.Cleanup(func() { _ = s.plugin.DeleteTenant(context.Background(), s.cfg, tenant) })
	// etcd gives kube-apiserver a direct connection (keys under its --etcd-prefix), the others a
	// kine sidecar (keys under the default /registry).
	want := migration.LayoutKine
	if s.driver == "etcd" {
		want = migration.LayoutEtcd
	}
	if (conn.Etcd != nil) != (s.driver == "etcd") || (conn.Kine != nil) == (s.driver == "etcd") || migration.LayoutOf(conn) != want {
		t.Fatalf("%s: EnsureTenant answered %+v, of layout %s; want the %s layout", s.driver, conn, migration.LayoutOf(conn), want)
	}
	return slice{Slice: migration.Slice{Plugin: s.plugin, Config: s.cfg, Tenant: tenant, Layout: want}, conn: conn}
}

// export is every key the plugin exports for the slice, in the driver's own layout (kine's
// bookkeeping keys included), failing on a key exported twice.
func export(ctx context.Context, s migration.Slice) (map[string][]byte, error) {
	out := map[string][]byte{}
	for kvs, err := range s.Plugin.Export(ctx, s.Config, s.Tenant) {
		if err != nil {
			return out, err
		}
		for _, kv := range kvs {
			if _, dup := out[string(kv.Key)]; dup {
				return out, fmt.Errorf("key %q exported twice", kv.Key)
			}
			out[string(kv.Key)] = kv.Value
		}
	}
	return out, nil
}

// digestOf is the digest of keys in the apiserver's key space, as migration.Sum computes it.
func digestOf(kvs map[string][]byte) migration.Digest {
	var d migration.Digest
	for k, v := range kvs {
		d.Add([]byte(k), v)
	}
	return d
}

// inLayout translates keys of the apiserver's key space into a driver's layout.
func inLayout(kvs map[string][]byte, l migration.Layout) []datastore.KeyValue {
	out := make([]datastore.KeyValue, 0, len(kvs))
	for k, v := range kvs {
		key, _ := migration.Translate([]byte(k), migration.LayoutEtcd, l)
		out = append(out, datastore.KeyValue{Key: key, Value: v})
	}
	return out
}

// holdsExactly checks that a slice's export is kvs (apiserver key space) in the slice's layout:
// under kine, every apiserver key carries registry/ and nothing but kine's bookkeeping is
// beside them; under etcd, nothing is beside them at all.
func holdsExactly(ctx context.Context, s migration.Slice, kvs map[string][]byte) error {
	got, err := export(ctx, s)
	if err != nil {
		return err
	}
	n := 0
	for raw, v := range got {
		k, ok := migration.Translate([]byte(raw), s.Layout, migration.LayoutEtcd)
		if !ok {
			continue // kine's own keys, outside /registry
		}
		want, found := kvs[string(k)]
		switch {
		case !found:
			return fmt.Errorf("holds %q, which it should not", raw)
		case string(want) != string(v):
			return fmt.Errorf("%q holds %d bytes %.40q, want %d bytes %.40q", raw, len(v), v, len(want), want)
		}
		n++
	}
	if n != len(kvs) {
		return fmt.Errorf("holds %d of the %d keys", n, len(kvs))
	}
	return nil
}

// apiserverKeys are keys as kube-apiserver writes them, relative to its prefix, with values as
// it stores them: protobuf (binary, behind the "k8s\x00" magic) for built-in kinds, JSON for
// custom resources. Values are random, so two calls give the same keys with other values.
func apiserverKeys(tag string) map[string][]byte {
	kvs := map[string][]byte{}
	proto := func(kind string, n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return append([]byte("k8s\x00\n\x0c\n\x02v1\x12\x06"+kind+"\x12"), b...)
	}
	for i := range 200 {
		kvs[fmt.Sprintf("configmaps/ns-%d/cm-%03d", i%5, i)] = proto("ConfigMap", 16+i*5)
	}
	for i := range 40 {
		kvs[fmt.Sprintf("secrets/kube-system/token-%02d", i)] = proto("Secret", 256)
	}
	// A CRD and its custom resources: <group>/<resource>/<namespace>/<name>.
	kvs["apiextensions.k8s.io/customresourcedefinitions/crontabs.stable.example.com"] = []byte(
		`{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"crontabs.stable.example.com"},"spec":{"group":"stable.example.com","names":{"plural":"crontabs","kind":"CronTab"},"scope":"Namespaced"}}`)
	for i := range 30 {
		kvs[fmt.Sprintf("stable.example.com/crontabs/ns-%d/cron-%02d", i%3, i)] = fmt.Appendf(nil,
			`{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"cron-%02d"},"spec":{"cronSpec":"*/%d * * * *","owner":%q}}`, i, i+1, tag)
	}
	kvs["rbac.authorization.k8s.io/clusterroles/system:controller:cronjob-controller"] = proto("ClusterRole", 300)
	kvs["apiregistration.k8s.io/apiservices/v1.stable.example.com"] = proto("APIService", 120)
	kvs["leases/kube-node-lease/node-a"] = proto("Lease", 60)
	every := make([]byte, 512) // every byte value twice: NUL, high bytes, invalid UTF-8
	for i := range every {
		every[i] = byte(i)
	}
	kvs["configmaps/bytes/every-byte"] = every
	kvs["configmaps/big/blob"] = proto("ConfigMap", 256<<10) // spans export and import chunks
	return kvs
}
