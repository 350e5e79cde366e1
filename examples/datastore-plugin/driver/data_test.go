package driver_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"example.com/kamaji-datastore-example/driver"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// An Import chunk of 500 keys and 3 MiB, the most the bundled drivers export in one chunk (and
// the core passes chunks on as they come), lands in an etcd with its default limits, which
// refuse such a chunk written as one transaction.
func TestImportChunkWithinEtcdDefaultLimits(t *testing.T) {
	etcd := testkit.StartEtcd(t) // etcd's defaults: --max-txn-ops=128, --max-request-bytes=1.5 MiB
	ctx, cfg := t.Context(), etcd.ConfigFor(driver.DriverName)

	const keys, valueSize = 500, 6 << 10 // 500 keys, 3 MiB of values
	chunk := make([]datastore.KeyValue, keys)
	for i := range chunk {
		chunk[i] = datastore.KeyValue{Key: fmt.Appendf(nil, "configmaps/default/cm-%03d", i), Value: bytes.Repeat([]byte{byte('a' + i%26)}, valueSize)}
	}
	// What the guide warns about: etcd refuses a transaction of more than 128 operations, or of
	// more than 1.5 MiB.
	root := etcd.Client(t)
	var many, large []clientv3.Op
	for i := range 129 {
		many = append(many, clientv3.OpPut(fmt.Sprintf("/limits/%03d", i), "v"))
	}
	for i := range 100 {
		large = append(large, clientv3.OpPut(fmt.Sprintf("/limits/%03d", i), strings.Repeat("v", 16<<10)))
	}
	if _, err := root.Txn(ctx).Then(many...).Commit(); err == nil || !strings.Contains(err.Error(), "too many operations in txn request") {
		t.Fatalf("one transaction of 129 puts: %v; want etcd to refuse it (--max-txn-ops=128)", err)
	}
	if _, err := root.Txn(ctx).Then(large...).Commit(); err == nil || !strings.Contains(err.Error(), "request is too large") {
		t.Fatalf("one transaction of 100 puts, 1.6 MiB: %v; want etcd to refuse it (--max-request-bytes=1.5 MiB)", err)
	}

	d := driver.New()
	t.Cleanup(d.Close)
	tenant := datastore.Tenant{Namespace: "ns", Name: "big", UID: "uid-big", Schema: "t_big", Username: "u_big"}
	if _, err := d.EnsureTenant(ctx, cfg, tenant); err != nil {
		t.Fatal(err)
	}
	res, err := d.Import(ctx, cfg, tenant, func(yield func([]datastore.KeyValue, error) bool) { yield(chunk, nil) })
	if err != nil {
		t.Fatalf("Import of one chunk of %d keys: %v", keys, err)
	}
	if res.Keys != keys {
		t.Errorf("Import wrote %d keys, want %d", res.Keys, keys)
	}
	got := 0
	for kvs, err := range d.Export(ctx, cfg, tenant) {
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range kvs {
			if want := chunk[got]; !bytes.Equal(kv.Key, want.Key) || !bytes.Equal(kv.Value, want.Value) {
				t.Fatalf("exported key %d: %q, want %q", got, kv.Key, want.Key)
			}
			got++
		}
	}
	if got != keys {
		t.Errorf("exported %d keys, want %d", got, keys)
	}
	if err := d.DeleteTenant(ctx, cfg, tenant); err != nil {
		t.Fatal(err)
	}
}
