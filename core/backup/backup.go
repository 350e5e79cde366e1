package backup

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/openhcp/kamaji/core/migration"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// Import chunks stay well under what a driver writes in one request (etcd's default
// --max-txn-ops is 128, its --max-request-bytes 1.5 MiB).
const (
	importKeys  = 100
	importBytes = 512 << 10
)

// Backup streams src's keys into an archive on w and returns their digest. The source is read
// through its driver's Export, which the drivers take from one consistent view where their
// backend has one (etcd: a single revision).
func Backup(ctx context.Context, src migration.Slice, w io.Writer, h Header) (migration.Digest, error) {
	aw, err := NewWriter(w, h)
	if err != nil {
		return migration.Digest{}, err
	}
	for kvs, err := range src.Plugin.Export(ctx, src.Config, src.Tenant) {
		if err != nil {
			return aw.Digest(), fmt.Errorf("export: %w", err)
		}
		for _, kv := range kvs {
			key, ok := migration.Translate(kv.Key, src.Layout, migration.LayoutEtcd)
			if !ok {
				continue // the driver's own bookkeeping, not the apiserver's
			}
			if err := aw.Add(key, kv.Value); err != nil {
				return aw.Digest(), err
			}
		}
	}
	return aw.Digest(), aw.Close()
}

// Verify reads a whole archive and checks it against its trailer, writing nothing.
func Verify(r io.Reader) (Header, Trailer, error) {
	ar, err := NewReader(r)
	if err != nil {
		return Header{}, Trailer{}, err
	}
	for _, err := range ar.Chunks {
		if err != nil {
			return ar.Header(), Trailer{}, err
		}
	}
	t, _ := ar.Trailer()
	return ar.Header(), t, nil
}

// VerifyFile is Verify on a file, naming it in the error.
func VerifyFile(path string) (Header, Trailer, error) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, Trailer{}, fmt.Errorf("the archive: %w", err)
	}
	defer f.Close()
	h, t, err := Verify(f)
	if err != nil {
		return h, t, fmt.Errorf("%s: %w", path, err)
	}
	return h, t, nil
}

// ErrNotEmpty is returned by Restore for a slice that already holds keys.
type ErrNotEmpty struct{ Keys int64 }

func (e *ErrNotEmpty) Error() string {
	return fmt.Sprintf("the tenant's slice already holds %d keys: a backup restores into an empty slice only (a new TenantControlPlane whose control plane has not run)", e.Keys)
}

// Restore writes an archive's keys into dst, which must be empty, and checks that dst then
// holds exactly the archive's keys and values. Call Verify on the archive first: a corrupt
// archive is only detected at its end, after the keys before the damage were written.
func Restore(ctx context.Context, ar *Reader, dst migration.Slice) (migration.Digest, error) {
	before, err := migration.Sum(ctx, dst)
	if err != nil {
		return migration.Digest{}, fmt.Errorf("reading the target slice: %w", err)
	}
	if before.Keys > 0 {
		return migration.Digest{}, &ErrNotEmpty{Keys: before.Keys}
	}
	chunks := func(yield func([]datastore.KeyValue, error) bool) {
		var out []datastore.KeyValue
		size := 0
		emit := func() bool {
			if len(out) == 0 {
				return true
			}
			ok := yield(out, nil)
			out, size = nil, 0
			return ok
		}
		for kvs, err := range ar.Chunks {
			if err != nil {
				yield(nil, err)
				return
			}
			for _, kv := range kvs {
				key, _ := migration.Translate(kv.Key, migration.LayoutEtcd, dst.Layout)
				out = append(out, datastore.KeyValue{Key: key, Value: kv.Value})
				size += len(key) + len(kv.Value)
				if (len(out) >= importKeys || size >= importBytes) && !emit() {
					return
				}
			}
		}
		emit()
	}
	res, err := dst.Plugin.Import(ctx, dst.Config, dst.Tenant, chunks)
	if err != nil {
		return ar.Digest(), fmt.Errorf("import: %w", err)
	}
	want := ar.Digest()
	if res.Keys != want.Keys {
		return want, fmt.Errorf("import wrote %d keys, the archive holds %d", res.Keys, want.Keys)
	}
	got, err := migration.Sum(ctx, dst)
	if err != nil {
		return want, fmt.Errorf("reading the restored slice back: %w", err)
	}
	if !got.Equal(want) {
		return want, fmt.Errorf("the restored slice holds %s, the archive %s", got, want)
	}
	return want, nil
}
