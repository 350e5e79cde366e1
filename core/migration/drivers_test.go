package migration_test

// The copy between every ordered pair of the four drivers, through the real plugin binaries and
// real servers: a tenant's keys, written into an etcd slice as kube-apiserver writes them, travel
// a circuit that takes each ordered pair (etcd, PostgreSQL, MySQL, NATS) exactly once, each hop
// into a fresh slice, and come back to etcd unchanged. A bystander tenant on every datastore,
// whose schema extends a mover's, must not lose or change a byte.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhcp/kamaji/core/migration"
	"github.com/openhcp/kamaji/core/testenv"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit"
	"github.com/openhcp/kamaji/sdk/testkit/mysqltest"
	"github.com/openhcp/kamaji/sdk/testkit/natstest"
)

// circuit is an Eulerian circuit of the complete directed graph on the four drivers: each of
// the 12 ordered pairs is one hop.
var circuit = []string{"etcd", "PostgreSQL", "MySQL", "NATS", "etcd", "MySQL", "PostgreSQL", "NATS", "MySQL", "etcd", "NATS", "PostgreSQL", "etcd"}

func TestCopyAcrossEveryPairOfDrivers(t *testing.T) {
	pairs := map[[2]string]int{}
	for i := 1; i < len(circuit); i++ {
		pairs[[2]string{circuit[i-1], circuit[i]}]++
	}
	for _, from := range []string{"etcd", "PostgreSQL", "MySQL", "NATS"} {
		for _, to := range []string{"etcd", "PostgreSQL", "MySQL", "NATS"} {
			if from != to && pairs[[2]string{from, to}] != 1 {
				t.Fatalf("the circuit takes %s → %s %d times, want once", from, to, pairs[[2]string{from, to}])
			}
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	etcd := testkit.StartEtcd(t)
	root := etcd.Client(t)
	stores := map[string]*store{
		"etcd":       {driver: "etcd", plugin: testenv.DataStorePlugin(t, "datastore-etcd", "etcd"), cfg: etcd.Config()},
		"PostgreSQL": {driver: "PostgreSQL", plugin: testenv.DataStorePlugin(t, "datastore-postgres", "PostgreSQL"), cfg: testenv.PostgresAdmin(t, "kamaji_mig_"+id)},
		"MySQL":      {driver: "MySQL", plugin: testenv.DataStorePlugin(t, "datastore-mysql", "MySQL"), cfg: mysqltest.DataStore(t)},
		// Operator (JWT) mode: the only NATS mode with more than one tenant per DataStore.
		"NATS": {driver: "NATS", plugin: testenv.DataStorePlugin(t, "datastore-nats", "NATS"), cfg: natstest.StartOperator(t, false).DataStore()},
	}
	hop := func(i int) datastore.Tenant {
		name := fmt.Sprintf("m%s_%02d", id, i)
		return datastore.Tenant{Namespace: "movers", Name: fmt.Sprintf("hop-%02d", i), Schema: name, Username: name, UID: "uid-" + name}
	}

	// Bystanders first, one per datastore, their schema and user the first mover's there plus a
	// letter: a slice removed by prefix, or a LIKE pattern, would take the bystander with it.
	type bystander struct {
		slice
		data     map[string][]byte // apiserver key space
		snapshot map[string][]byte // everything its plugin exported, kine's keys included
	}
	bystanders := map[string]*bystander{}
	for i, driver := range circuit {
		if bystanders[driver] != nil {
			continue
		}
		s := stores[driver]
		name := hop(i).Schema + "b"
		by := &bystander{data: apiserverKeys("bystander-" + driver)}
		by.slice = provision(ctx, t, s, datastore.Tenant{Namespace: "bystanders", Name: "by-" + driver, Schema: name, Username: name, UID: "uid-" + name})
		res, err := s.plugin.Import(ctx, s.cfg, by.Tenant, chunks(inLayout(by.data, by.Layout), 64))
		if err != nil || res.Keys != int64(len(by.data)) {
			t.Fatalf("%s: seeding the bystander: %d keys imported (%v), want %d", driver, res.Keys, err, len(by.data))
		}
		if err := holdsExactly(ctx, by.Slice, by.data); err != nil {
			t.Fatalf("%s: the bystander after seeding: %v", driver, err)
		}
		if by.snapshot, err = export(ctx, by.Slice); err != nil {
			t.Fatal(err)
		}
		bystanders[driver] = by
	}

	// The mover's source: an etcd slice written as kube-apiserver with --etcd-prefix writes it.
	want := apiserverKeys("mover")
	wantSum := digestOf(want)
	cur := provision(ctx, t, stores["etcd"], hop(0))
	for k, v := range want {
		if _, err := root.Put(ctx, cur.conn.Etcd.Prefix+k, string(v)); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := migration.Sum(ctx, cur.Slice); err != nil || !got.Equal(wantSum) {
		t.Fatalf("the source sums to %s (%v), want %s", got, err, wantSum)
	}

	for i := 1; i < len(circuit); i++ {
		from, to := circuit[i-1], circuit[i]
		next := provision(ctx, t, stores[to], hop(i))
		copied, err := migration.Copy(ctx, cur.Slice, next.Slice)
		if err != nil {
			t.Fatalf("hop %d, %s → %s: %v", i, from, to, err)
		}
		if copied.Keys != int64(len(want)) || !copied.Equal(wantSum) {
			t.Fatalf("hop %d, %s → %s: copied %s, want %s", i, from, to, copied, wantSum)
		}
		srcSum, err1 := migration.Sum(ctx, cur.Slice)
		dstSum, err2 := migration.Sum(ctx, next.Slice)
		if err1 != nil || err2 != nil || !srcSum.Equal(copied) || !dstSum.Equal(copied) {
			t.Fatalf("hop %d, %s → %s: source sums to %s (%v), target to %s (%v), copied %s", i, from, to, srcSum, err1, dstSum, err2, copied)
		}
		if err := holdsExactly(ctx, next.Slice, want); err != nil {
			t.Fatalf("hop %d, %s → %s: the target (%s layout) %v", i, from, to, next.Layout, err)
		}
		// The source is deprovisioned, as a migration does once the tenant runs on the target.
		if err := cur.Plugin.DeleteTenant(ctx, cur.Config, cur.Tenant); err != nil {
			t.Fatalf("hop %d: DeleteTenant of the %s source: %v", i, from, err)
		}
		// Nothing left to export: PostgreSQL answers that the tenant's database does not exist,
		// the others an empty stream.
		if left, err := export(ctx, cur.Slice); len(left) > 0 || (err != nil && !strings.Contains(err.Error(), "does not exist")) {
			t.Fatalf("hop %d: the deleted %s source exports %d keys (%v), want none", i, from, len(left), err)
		}
		t.Logf("hop %2d %-10s → %-10s %s", i, from, to, copied)
		cur = next
	}

	// Back on etcd: exactly the original keys and values under the slice's prefix.
	resp, err := root.Get(ctx, cur.conn.Etcd.Prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key[len(cur.conn.Etcd.Prefix):])] = kv.Value
	}
	if !maps.EqualFunc(got, want, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatalf("the last etcd slice holds %d keys (%s), want the original %d (%s)", len(got), digestOf(got), len(want), wantSum)
	}

	// Every bystander byte for byte as it was: through its plugin, and on etcd in etcd itself.
	for driver, by := range bystanders {
		now, err := export(ctx, by.Slice)
		if err != nil {
			t.Fatalf("%s: the bystander: %v", driver, err)
		}
		if !maps.EqualFunc(now, by.snapshot, func(a, b []byte) bool { return string(a) == string(b) }) {
			t.Errorf("%s: the bystander changed: %d keys (%s) where it had %d (%s)", driver, len(now), digestOf(now), len(by.snapshot), digestOf(by.snapshot))
		}
		if err := holdsExactly(ctx, by.Slice, by.data); err != nil {
			t.Errorf("%s: the bystander %v", driver, err)
		}
	}
	by := bystanders["etcd"]
	resp, err = root.Get(ctx, by.conn.Etcd.Prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	raw := map[string][]byte{}
	for _, kv := range resp.Kvs {
		raw[string(kv.Key[len(by.conn.Etcd.Prefix):])] = kv.Value
	}
	if !maps.EqualFunc(raw, by.data, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Errorf("etcd holds %d keys under the bystander's prefix %s, want its %d", len(raw), by.conn.Etcd.Prefix, len(by.data))
	}
}

// chunks streams kvs as Import takes them, n keys at a time.
func chunks(kvs []datastore.KeyValue, n int) iter.Seq2[[]datastore.KeyValue, error] {
	return func(yield func([]datastore.KeyValue, error) bool) {
		for c := range slices.Chunk(kvs, n) {
			if !yield(c, nil) {
				return
			}
		}
	}
}
