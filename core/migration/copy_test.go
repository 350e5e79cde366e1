package migration

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"
	"testing"

	"github.com/openhcp/kamaji/sdk/datastore"
)

// memStore is an in-memory driver with Export/Import only: enough for the copy's own logic
// (the real drivers' streams are tested against real backends in the integration tests).
type memStore struct {
	datastore.Unimplemented
	keys  map[string]string
	chunk int
}

func (m *memStore) GetPluginInfo(context.Context) (datastore.PluginInfo, error) {
	return datastore.PluginInfo{}, nil
}
func (m *memStore) Capabilities(context.Context) ([]datastore.Capability, error) { return nil, nil }
func (m *memStore) Probe(context.Context) (datastore.ProbeResult, error) {
	return datastore.ProbeResult{Ready: true}, nil
}
func (m *memStore) ValidateConfig(context.Context, datastore.Config) error { return nil }
func (m *memStore) EnsureTenant(context.Context, datastore.Config, datastore.Tenant) (datastore.Connection, error) {
	return datastore.Connection{}, nil
}
func (m *memStore) DeleteTenant(context.Context, datastore.Config, datastore.Tenant) error {
	return nil
}

func (m *memStore) Export(context.Context, datastore.Config, datastore.Tenant) iter.Seq2[[]datastore.KeyValue, error] {
	return func(yield func([]datastore.KeyValue, error) bool) {
		var chunk []datastore.KeyValue
		for _, k := range slices.Sorted(maps.Keys(m.keys)) {
			chunk = append(chunk, datastore.KeyValue{Key: []byte(k), Value: []byte(m.keys[k])})
			if len(chunk) == m.chunk {
				if !yield(chunk, nil) {
					return
				}
				chunk = nil
			}
		}
		if len(chunk) > 0 {
			yield(chunk, nil)
		}
	}
}

func (m *memStore) Import(_ context.Context, _ datastore.Config, _ datastore.Tenant, chunks iter.Seq2[[]datastore.KeyValue, error]) (datastore.ImportResult, error) {
	var r datastore.ImportResult
	for kvs, err := range chunks {
		if err != nil {
			return r, err
		}
		for _, kv := range kvs {
			m.keys[string(kv.Key)] = string(kv.Value)
			r.Keys++
		}
	}
	return r, nil
}

func TestTranslate(t *testing.T) {
	for _, tc := range []struct {
		in       string
		from, to Layout
		want     string
		ok       bool
	}{
		{"pods/default/a", LayoutEtcd, LayoutEtcd, "pods/default/a", true},
		{"pods/default/a", LayoutEtcd, LayoutKine, "registry/pods/default/a", true},
		{"registry/pods/default/a", LayoutKine, LayoutEtcd, "pods/default/a", true},
		{"compact_rev_key", LayoutKine, LayoutEtcd, "", false},
		{"registry/", LayoutKine, LayoutEtcd, "", false},
	} {
		got, ok := Translate([]byte(tc.in), tc.from, tc.to)
		if ok != tc.ok || (ok && string(got) != tc.want) {
			t.Errorf("Translate(%q, %s, %s) = %q, %v; want %q, %v", tc.in, tc.from, tc.to, got, ok, tc.want, tc.ok)
		}
	}
}

// Keys cross layouts both ways unchanged in the apiserver's key space, and the digests of
// both sides agree; a changed value or a missing key changes the digest.
func TestCopyAcrossLayoutsKeepsEveryKeyAndTheDigest(t *testing.T) {
	ctx := context.Background()
	src := &memStore{keys: map[string]string{}, chunk: 7}
	for i := range 50 {
		src.keys[fmt.Sprintf("registry/configmaps/default/cm-%02d", i)] = fmt.Sprintf("value %d", i)
	}
	src.keys["compact_rev_key"] = "kine's own"
	mid := &memStore{keys: map[string]string{}, chunk: 5}
	back := &memStore{keys: map[string]string{}, chunk: 3}
	d1, err := Copy(ctx, Slice{Plugin: src, Layout: LayoutKine}, Slice{Plugin: mid, Layout: LayoutEtcd})
	if err != nil {
		t.Fatal(err)
	}
	if d1.Keys != 50 || mid.keys["configmaps/default/cm-07"] != "value 7" || len(mid.keys) != 50 {
		t.Fatalf("kine to etcd: %s, %d keys", d1, len(mid.keys))
	}
	d2, err := Copy(ctx, Slice{Plugin: mid, Layout: LayoutEtcd}, Slice{Plugin: back, Layout: LayoutKine})
	if err != nil {
		t.Fatal(err)
	}
	if !d1.Equal(d2) || back.keys["registry/configmaps/default/cm-49"] != "value 49" {
		t.Fatalf("etcd to kine: %s vs %s", d1, d2)
	}
	sum, err := Sum(ctx, Slice{Plugin: back, Layout: LayoutKine})
	if err != nil || !sum.Equal(d1) {
		t.Fatalf("Sum of the target %s, %v; want %s", sum, err, d1)
	}
	back.keys["registry/configmaps/default/cm-03"] = "changed"
	if sum, _ := Sum(ctx, Slice{Plugin: back, Layout: LayoutKine}); sum.Equal(d1) {
		t.Error("a changed value does not change the digest")
	}
	delete(back.keys, "registry/configmaps/default/cm-03")
	if sum, _ := Sum(ctx, Slice{Plugin: back, Layout: LayoutKine}); sum.Equal(d1) {
		t.Error("a missing key does not change the digest")
	}
}
