package driver

import (
	"context"
	"fmt"
	"iter"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhcp/kamaji/sdk/datastore"
)

const (
	// exportKeys and exportBytes bound an Export chunk: one range read, and well under gRPC's
	// 4 MiB message limit.
	exportKeys  = 500
	exportBytes = 3 << 20
	// importOps and importBytes bound an Import transaction. etcd refuses a transaction of more
	// than --max-txn-ops operations (128 by default) and a request of more than
	// --max-request-bytes (1.5 MiB by default), and an Import chunk may hold 500 keys and 3 MiB
	// (the core passes on the source driver's Export chunks as they come): a chunk is written in
	// as many transactions as these bounds need.
	importOps   = 100
	importBytes = 1 << 20
)

// scan yields the keys under prefix, exportKeys at a time, all read at the revision of the first
// read: one consistent snapshot, however long the scan takes.
func scan(ctx context.Context, cli *clientv3.Client, prefix string) iter.Seq2[[]*kv, error] {
	return func(yield func([]*kv, error) bool) {
		end := clientv3.GetPrefixRangeEnd(prefix)
		from, rev := prefix, int64(0)
		for {
			opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(exportKeys)}
			if rev != 0 {
				opts = append(opts, clientv3.WithRev(rev))
			}
			resp, err := cli.Get(ctx, from, opts...)
			if err != nil {
				yield(nil, fmt.Errorf("read keys under %q: %w", prefix, err))
				return
			}
			if rev == 0 {
				rev = resp.Header.Revision
			}
			page := make([]*kv, len(resp.Kvs))
			for i, x := range resp.Kvs {
				page[i] = &kv{key: x.Key, value: x.Value}
			}
			if len(page) > 0 && !yield(page, nil) {
				return
			}
			if !resp.More || len(resp.Kvs) == 0 {
				return
			}
			from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
	}
}

type kv struct{ key, value []byte }

// GetUsage counts each tenant's keys and bytes (keys plus values) under its prefix; the totals
// are every key of the etcd and its database size in use.
func (d *Driver) GetUsage(ctx context.Context, cfg datastore.Config, tenants []datastore.Tenant) (datastore.UsageReport, error) {
	srv, err := servers(cfg)
	if err != nil {
		return datastore.UsageReport{}, err
	}
	prefixes := make([]string, len(tenants))
	for i, t := range tenants {
		if prefixes[i], err = checkTenant(cfg, t); err != nil {
			return datastore.UsageReport{}, err
		}
	}
	cli, done, err := d.clients.get(cfg, srv)
	if err != nil {
		return datastore.UsageReport{}, err
	}
	defer done()
	var rep datastore.UsageReport
	for i, t := range tenants {
		var u datastore.Usage
		for page, err := range scan(ctx, cli, prefixes[i]) {
			if err != nil {
				return datastore.UsageReport{}, err
			}
			for _, x := range page {
				u.Keys++
				u.Bytes += int64(len(x.key) + len(x.value))
			}
		}
		rep.Tenants = append(rep.Tenants, datastore.TenantUsage{Tenant: t, Usage: u})
	}
	all, err := cli.Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithCountOnly())
	if err != nil {
		return datastore.UsageReport{}, fmt.Errorf("count keys: %w", err)
	}
	rep.Total = datastore.Usage{Keys: all.Count, Bytes: -1}
	if st, err := cli.Status(ctx, srv[0]); err == nil {
		rep.Total.Bytes = st.DbSizeInUse
	}
	return rep, nil
}

// Export yields t's keys relative to "/<schema>/" ("pods/default/x", as kube-apiserver names
// them under its --etcd-prefix), with their values, from one revision.
func (d *Driver) Export(ctx context.Context, cfg datastore.Config, t datastore.Tenant) iter.Seq2[[]datastore.KeyValue, error] {
	return func(yield func([]datastore.KeyValue, error) bool) {
		srv, err := servers(cfg)
		if err != nil {
			yield(nil, err)
			return
		}
		prefix, err := checkTenant(cfg, t)
		if err != nil {
			yield(nil, err)
			return
		}
		cli, done, err := d.clients.get(cfg, srv)
		if err != nil {
			yield(nil, err)
			return
		}
		defer done()
		for page, err := range scan(ctx, cli, prefix) {
			if err != nil {
				yield(nil, err)
				return
			}
			var chunk []datastore.KeyValue
			size := 0
			for _, x := range page {
				n := len(x.key) + len(x.value)
				if len(chunk) > 0 && size+n > exportBytes {
					if !yield(chunk, nil) {
						return
					}
					chunk, size = nil, 0
				}
				chunk = append(chunk, datastore.KeyValue{Key: x.key[len(prefix):], Value: x.value})
				size += n
			}
			if !yield(chunk, nil) {
				return
			}
		}
	}
}

// Import writes the chunks under "/<schema>/", overwriting what is there so that a retried
// migration converges, in transactions within etcd's default limits.
func (d *Driver) Import(ctx context.Context, cfg datastore.Config, t datastore.Tenant, chunks iter.Seq2[[]datastore.KeyValue, error]) (datastore.ImportResult, error) {
	var res datastore.ImportResult
	srv, err := servers(cfg)
	if err != nil {
		return res, err
	}
	prefix, err := checkTenant(cfg, t)
	if err != nil {
		return res, err
	}
	cli, done, err := d.clients.get(cfg, srv)
	if err != nil {
		return res, err
	}
	defer done()

	var ops []clientv3.Op
	var pending datastore.ImportResult // what ops write, relative keys and values
	size := 0                          // the transaction's size: absolute keys and values
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			return fmt.Errorf("write %d keys under %q: %w", len(ops), prefix, err)
		}
		res.Keys += pending.Keys
		res.Bytes += pending.Bytes
		ops, pending, size = ops[:0], datastore.ImportResult{}, 0
		return nil
	}
	for kvs, err := range chunks {
		if err != nil {
			return res, err
		}
		for _, x := range kvs {
			n := len(prefix) + len(x.Key) + len(x.Value)
			if len(ops) == importOps || (len(ops) > 0 && size+n > importBytes) {
				if err := flush(); err != nil {
					return res, err
				}
			}
			ops = append(ops, clientv3.OpPut(prefix+string(x.Key), string(x.Value)))
			pending.Keys++
			pending.Bytes += int64(len(x.Key) + len(x.Value))
			size += n
		}
	}
	return res, flush()
}
