package driver

import (
	"context"
	"fmt"
	"iter"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhcp/kamaji/sdk/datastore"
)

const (
	// pageSize is the number of keys read per range request and the most keys per chunk.
	pageSize = 500
	// chunkBytes keeps a chunk well under gRPC's default 4 MiB message limit.
	chunkBytes = 3 << 20
	// etcd refuses transactions beyond --max-txn-ops (128 by default) and requests beyond
	// --max-request-bytes (1.5 MiB by default).
	txnOps   = 128
	txnBytes = 1 << 20
)

// GetUsage counts each tenant's keys and bytes (keys plus values) by scanning its prefix, and
// reports the whole keyspace's key count and the backend's in-use size as totals.
func (d *Driver) GetUsage(ctx context.Context, cfg datastore.Config, tenants []datastore.Tenant) (datastore.UsageReport, error) {
	srv, err := servers(cfg)
	if err != nil {
		return datastore.UsageReport{}, err
	}
	prefixes := make([]string, len(tenants))
	for i, t := range tenants {
		if prefixes[i], err = tenantPrefix(t); err != nil {
			return datastore.UsageReport{}, err
		}
	}
	cli, release, err := d.pool.get(cfg, srv)
	if err != nil {
		return datastore.UsageReport{}, err
	}
	defer release()

	var rep datastore.UsageReport
	for i, t := range tenants {
		u := datastore.Usage{}
		for kvs, err := range pages(ctx, cli, prefixes[i]) {
			if err != nil {
				return datastore.UsageReport{}, err
			}
			for _, kv := range kvs {
				u.Keys++
				u.Bytes += int64(len(kv.Key) + len(kv.Value))
			}
		}
		rep.Tenants = append(rep.Tenants, datastore.TenantUsage{Tenant: t, Usage: u})
	}
	all, err := cli.Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithCountOnly())
	if err != nil {
		return datastore.UsageReport{}, err
	}
	rep.Total = datastore.Usage{Keys: all.Count, Bytes: -1}
	if st, err := cli.Status(ctx, srv[0]); err == nil {
		rep.Total.Bytes = st.DbSizeInUse
	}
	return rep, nil
}

// pages yields the keys under prefix, pageSize at a time, all read at the revision of the first
// page so that the result is a consistent snapshot.
func pages(ctx context.Context, cli *clientv3.Client, prefix string) iter.Seq2[[]*kv, error] {
	return func(yield func([]*kv, error) bool) {
		end := clientv3.GetPrefixRangeEnd(prefix)
		from, rev := prefix, int64(0)
		for {
			opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(pageSize)}
			if rev != 0 {
				opts = append(opts, clientv3.WithRev(rev))
			}
			resp, err := cli.Get(ctx, from, opts...)
			if err != nil {
				yield(nil, fmt.Errorf("read %q: %w", prefix, err))
				return
			}
			if rev == 0 {
				rev = resp.Header.Revision
			}
			out := make([]*kv, len(resp.Kvs))
			for i, x := range resp.Kvs {
				out[i] = &kv{Key: x.Key, Value: x.Value}
			}
			if len(out) > 0 && !yield(out, nil) {
				return
			}
			if !resp.More || len(resp.Kvs) == 0 {
				return
			}
			from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
	}
}

type kv struct{ Key, Value []byte }

// Export streams the tenant's keys relative to "/<schema>/", from one consistent revision.
func (d *Driver) Export(ctx context.Context, cfg datastore.Config, t datastore.Tenant) iter.Seq2[[]datastore.KeyValue, error] {
	return func(yield func([]datastore.KeyValue, error) bool) {
		srv, err := servers(cfg)
		if err != nil {
			yield(nil, err)
			return
		}
		prefix, err := tenantPrefix(t)
		if err != nil {
			yield(nil, err)
			return
		}
		cli, release, err := d.pool.get(cfg, srv)
		if err != nil {
			yield(nil, err)
			return
		}
		defer release()
		for page, err := range pages(ctx, cli, prefix) {
			if err != nil {
				yield(nil, err)
				return
			}
			var chunk []datastore.KeyValue
			size := 0
			for _, x := range page {
				n := len(x.Key) + len(x.Value)
				if len(chunk) > 0 && size+n > chunkBytes {
					if !yield(chunk, nil) {
						return
					}
					chunk, size = nil, 0
				}
				chunk = append(chunk, datastore.KeyValue{Key: x.Key[len(prefix):], Value: x.Value})
				size += n
			}
			if !yield(chunk, nil) {
				return
			}
		}
	}
}

// Import writes the chunks under "/<schema>/" in transactions sized for etcd's default limits.
// Existing keys are overwritten, so a retried import converges.
func (d *Driver) Import(ctx context.Context, cfg datastore.Config, t datastore.Tenant, chunks iter.Seq2[[]datastore.KeyValue, error]) (datastore.ImportResult, error) {
	var res datastore.ImportResult
	srv, err := servers(cfg)
	if err != nil {
		return res, err
	}
	prefix, err := tenantPrefix(t)
	if err != nil {
		return res, err
	}
	cli, release, err := d.pool.get(cfg, srv)
	if err != nil {
		return res, err
	}
	defer release()

	var ops []clientv3.Op
	var pending datastore.ImportResult
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			return fmt.Errorf("write under %q: %w", prefix, err)
		}
		res.Keys += pending.Keys
		res.Bytes += pending.Bytes
		ops, pending = ops[:0], datastore.ImportResult{}
		return nil
	}
	for kvs, err := range chunks {
		if err != nil {
			return res, err
		}
		for _, x := range kvs {
			n := int64(len(x.Key) + len(x.Value))
			if len(ops) == txnOps || (len(ops) > 0 && pending.Bytes+n > txnBytes) {
				if err := flush(); err != nil {
					return res, err
				}
			}
			ops = append(ops, clientv3.OpPut(prefix+string(x.Key), string(x.Value)))
			pending.Keys++
			pending.Bytes += n
		}
	}
	return res, flush()
}
