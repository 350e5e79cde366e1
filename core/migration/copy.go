package migration

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"iter"

	"github.com/openhcp/kamaji/sdk/datastore"
)

// Slice is one side of a copy: a driver's plugin, its DataStore configuration, the tenant and
// the layout of its keys.
type Slice struct {
	Plugin datastore.Plugin
	Config datastore.Config
	Tenant datastore.Tenant
	Layout Layout
}

// Digest counts and sums a set of keys and values. The sum is the XOR of each key's and
// value's SHA-256, so it does not depend on the order the keys came in (drivers order them
// differently); keys are unique, so nothing cancels out.
type Digest struct {
	Keys  int64
	Bytes int64
	Sum   [sha256.Size]byte
}

// Add counts one key (in the apiserver's key space) and its value.
func (d *Digest) Add(key, value []byte) {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(key)))
	h.Write(n[:])
	h.Write(key)
	h.Write(value)
	var s [sha256.Size]byte
	h.Sum(s[:0])
	for i := range s {
		d.Sum[i] ^= s[i]
	}
	d.Keys++
	d.Bytes += int64(len(key) + len(value))
}

// Equal reports whether two digests describe the same keys and values.
func (d Digest) Equal(o Digest) bool { return d == o }

func (d Digest) String() string {
	return fmt.Sprintf("%d keys, %d bytes, sum %x", d.Keys, d.Bytes, d.Sum[:8])
}

// Copy streams src's keys into dst, translated to dst's layout, and returns the digest of what
// was written (in the apiserver's key space, so it compares across layouts). Only one chunk is
// held at a time.
func Copy(ctx context.Context, src, dst Slice) (Digest, error) {
	var d Digest
	chunks := func(yield func([]datastore.KeyValue, error) bool) {
		for kvs, err := range src.Plugin.Export(ctx, src.Config, src.Tenant) {
			if err != nil {
				yield(nil, fmt.Errorf("export: %w", err))
				return
			}
			out := make([]datastore.KeyValue, 0, len(kvs))
			for _, kv := range kvs {
				key, ok := Translate(kv.Key, src.Layout, dst.Layout)
				if !ok {
					continue
				}
				rel, _ := Translate(key, dst.Layout, LayoutEtcd)
				d.Add(rel, kv.Value)
				out = append(out, datastore.KeyValue{Key: key, Value: kv.Value})
			}
			if len(out) > 0 && !yield(out, nil) {
				return
			}
		}
	}
	res, err := dst.Plugin.Import(ctx, dst.Config, dst.Tenant, iter.Seq2[[]datastore.KeyValue, error](chunks))
	if err != nil {
		return d, fmt.Errorf("import: %w", err)
	}
	if res.Keys != d.Keys {
		return d, fmt.Errorf("import wrote %d keys, %d were sent", res.Keys, d.Keys)
	}
	return d, nil
}

// Sum exports a slice and returns its digest in the apiserver's key space.
func Sum(ctx context.Context, s Slice) (Digest, error) {
	var d Digest
	for kvs, err := range s.Plugin.Export(ctx, s.Config, s.Tenant) {
		if err != nil {
			return d, fmt.Errorf("export: %w", err)
		}
		for _, kv := range kvs {
			if rel, ok := Translate(kv.Key, s.Layout, LayoutEtcd); ok {
				d.Add(rel, kv.Value)
			}
		}
	}
	return d, nil
}
