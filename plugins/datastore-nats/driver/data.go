package driver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math/big"
	"strings"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openhcp/kamaji/sdk/datastore"
)

// A tenant's data is kine's bucket: one KV entry per key, the key encoded by kine's codec
// (each '/'-separated segment in base58, joined with '.'; "meta." first for a key without a
// leading '/'), the value kine's JSON envelope compressed with s2. The apiserver's keys start
// with "/"; kine's own bookkeeping keys and the plugin's tenant marker do not, and are neither
// exported nor counted.

const (
	// chunkKeys and chunkBytes bound an Export chunk, well under gRPC's 4 MiB message limit.
	chunkKeys  = 500
	chunkBytes = 3 << 20
)

// natsData is kine's envelope of a value.
type natsData struct {
	KV           *keyValue `json:"KV"`
	PrevRevision int64     `json:"PrevRevision"`
	Create       bool      `json:"Create"`
	Delete       bool      `json:"Delete"`
}

type keyValue struct {
	Key            string
	Value          []byte
	Version        int64
	CreateRevision int64
	ModRevision    int64
	Lease          int64
}

func encodeValue(nd natsData) ([]byte, error) {
	j, err := json.Marshal(nd)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w := s2.NewWriter(&buf)
	if err := w.EncodeBuffer(j); err != nil {
		w.Close()
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeValue(b []byte) (natsData, error) {
	var nd natsData
	var out bytes.Buffer
	if _, err := out.ReadFrom(s2.NewReader(bytes.NewReader(b))); err != nil {
		return nd, fmt.Errorf("kine value: %w", err)
	}
	if err := json.Unmarshal(out.Bytes(), &nd); err != nil {
		return nd, fmt.Errorf("kine value: %w", err)
	}
	return nd, nil
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

var base58Index = func() (m [256]int) {
	for i := range m {
		m[i] = -1
	}
	for i, c := range base58Alphabet {
		m[c] = i
	}
	return m
}()

func base58Encode(b []byte) string {
	n := new(big.Int).SetBytes(b)
	var out []byte
	mod, radix := new(big.Int), big.NewInt(58)
	for n.Sign() > 0 {
		n.DivMod(n, radix, mod)
		out = append(out, base58Alphabet[mod.Int64()])
	}
	for _, c := range b {
		if c != 0 {
			break
		}
		out = append(out, base58Alphabet[0])
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

func base58Decode(s string) ([]byte, error) {
	n := new(big.Int)
	radix := big.NewInt(58)
	zeros := 0
	for zeros < len(s) && s[zeros] == base58Alphabet[0] {
		zeros++
	}
	for i := 0; i < len(s); i++ {
		d := base58Index[s[i]]
		if d < 0 {
			return nil, fmt.Errorf("invalid base58 %q", s)
		}
		n.Mul(n, radix)
		n.Add(n, big.NewInt(int64(d)))
	}
	return append(make([]byte, zeros), n.Bytes()...), nil
}

// encodeKey is kine's key codec.
func encodeKey(key string) (string, error) {
	if key == "" || key == "/" {
		return "", jetstream.ErrInvalidKey
	}
	var parts []string
	if !strings.HasPrefix(key, "/") {
		parts = append(parts, "meta")
	}
	for _, p := range strings.Split(strings.TrimPrefix(key, "/"), "/") {
		if p == "" {
			p = "/"
		}
		parts = append(parts, base58Encode([]byte(p)))
	}
	return strings.Join(parts, "."), nil
}

// decodeKey reverses encodeKey.
func decodeKey(ek string) (string, error) {
	rooted := !strings.HasPrefix(ek, "meta")
	var parts []string
	for _, s := range strings.Split(ek, ".") {
		if s == "meta" {
			continue
		}
		b, err := base58Decode(s)
		if err != nil {
			return "", err
		}
		p := string(b)
		if p == "/" {
			p = ""
		}
		parts = append(parts, p)
	}
	k := strings.Join(parts, "/")
	if rooted {
		k = "/" + k
	}
	return k, nil
}

// putKine writes key as kine's Create (absent key) or Update (present key) does, unless its
// current value is already value.
func putKine(ctx context.Context, kv jetstream.KeyValue, key string, value []byte) error {
	ek, err := encodeKey(key)
	if err != nil {
		return err
	}
	nd := natsData{KV: &keyValue{Key: key, Value: value}}
	e, err := kv.Get(ctx, ek)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		nd.Create = true
		b, err := encodeValue(nd)
		if err != nil {
			return err
		}
		_, err = kv.Create(ctx, ek, b)
		return err
	case err != nil:
		return err
	}
	prev, err := decodeValue(e.Value())
	if err != nil {
		return err
	}
	switch {
	case prev.Delete:
		nd.Create, nd.PrevRevision = true, int64(e.Revision())
	case prev.KV != nil && bytes.Equal(prev.KV.Value, value):
		return nil
	default:
		nd.PrevRevision = int64(e.Revision())
		if prev.KV != nil {
			nd.KV.CreateRevision = prev.KV.CreateRevision
		}
		if nd.KV.CreateRevision == 0 {
			nd.KV.CreateRevision = int64(e.Revision())
		}
	}
	b, err := encodeValue(nd)
	if err != nil {
		return err
	}
	_, err = kv.Update(ctx, ek, b, e.Revision())
	return err
}

func getKine(ctx context.Context, kv jetstream.KeyValue, key string) ([]byte, bool, error) {
	ek, err := encodeKey(key)
	if err != nil {
		return nil, false, err
	}
	e, err := kv.Get(ctx, ek)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	nd, err := decodeValue(e.Value())
	if err != nil || nd.Delete || nd.KV == nil {
		return nil, false, err
	}
	return nd.KV.Value, true, nil
}

// current yields the bucket's current apiserver keys (absolute) and values, as of one moment:
// a watcher's initial values are the last message of every subject when it starts.
func current(ctx context.Context, kv jetstream.KeyValue) iter.Seq2[datastore.KeyValue, error] {
	return func(yield func(datastore.KeyValue, error) bool) {
		w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
		if err != nil {
			yield(datastore.KeyValue{}, err)
			return
		}
		defer w.Stop() //nolint:errcheck // nothing to do about it
		for {
			var e jetstream.KeyValueEntry
			select {
			case <-ctx.Done():
				yield(datastore.KeyValue{}, ctx.Err())
				return
			case e = <-w.Updates():
			}
			if e == nil {
				return // initial values done
			}
			key, err := decodeKey(e.Key())
			if err != nil || !strings.HasPrefix(key, "/") {
				continue // not an apiserver key
			}
			nd, err := decodeValue(e.Value())
			if err != nil {
				yield(datastore.KeyValue{}, fmt.Errorf("key %q: %w", key, err))
				return
			}
			if nd.Delete || nd.KV == nil {
				continue
			}
			v := nd.KV.Value
			if v == nil {
				v = []byte{}
			}
			if !yield(datastore.KeyValue{Key: []byte(key), Value: v}, nil) {
				return
			}
		}
	}
}

func (d *Driver) bucket(ctx context.Context, cfg datastore.Config, t datastore.Tenant) (*settings, jetstream.JetStream, jetstream.KeyValue, error) {
	s, err := d.settings(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	name, err := bucketName(t)
	if err != nil {
		return nil, nil, nil, err
	}
	js, err := d.admin(s)
	if err != nil {
		return nil, nil, nil, err
	}
	kv, err := js.KeyValue(ctx, name)
	return s, js, kv, err
}

// GetUsage counts each tenant's current keys and their bytes (key plus uncompressed value) by
// walking its bucket; the total is the account's JetStream storage, its key count unknown.
func (d *Driver) GetUsage(ctx context.Context, cfg datastore.Config, tenants []datastore.Tenant) (datastore.UsageReport, error) {
	s, err := d.settings(cfg)
	if err != nil {
		return datastore.UsageReport{}, err
	}
	for _, t := range tenants {
		if _, err := bucketName(t); err != nil {
			return datastore.UsageReport{}, err
		}
	}
	var rep datastore.UsageReport
	for _, t := range tenants {
		u := datastore.Usage{}
		_, _, kv, err := d.bucket(ctx, cfg, t)
		switch {
		case errors.Is(err, jetstream.ErrBucketNotFound):
		case err != nil:
			return datastore.UsageReport{}, err
		default:
			for e, err := range current(ctx, kv) {
				if err != nil {
					return datastore.UsageReport{}, err
				}
				u.Keys++
				u.Bytes += int64(len(e.Key) + len(e.Value))
			}
		}
		rep.Tenants = append(rep.Tenants, datastore.TenantUsage{Tenant: t, Usage: u})
	}
	rep.Total = datastore.Usage{Keys: -1, Bytes: -1}
	js, err := d.admin(s)
	if err != nil {
		return datastore.UsageReport{}, err
	}
	if info, err := js.AccountInfo(ctx); err == nil {
		rep.Total.Bytes = int64(info.Store)
	}
	return rep, nil
}

// Export streams the tenant's current keys relative to "/", from one watcher's snapshot.
func (d *Driver) Export(ctx context.Context, cfg datastore.Config, t datastore.Tenant) iter.Seq2[[]datastore.KeyValue, error] {
	return func(yield func([]datastore.KeyValue, error) bool) {
		_, _, kv, err := d.bucket(ctx, cfg, t)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return
		}
		if err != nil {
			yield(nil, err)
			return
		}
		var chunk []datastore.KeyValue
		size := 0
		for e, err := range current(ctx, kv) {
			if err != nil {
				yield(nil, err)
				return
			}
			if len(chunk) > 0 && (len(chunk) == chunkKeys || size+len(e.Key)+len(e.Value) > chunkBytes) {
				if !yield(chunk, nil) {
					return
				}
				chunk, size = nil, 0
			}
			chunk = append(chunk, datastore.KeyValue{Key: e.Key[1:], Value: e.Value})
			size += len(e.Key) + len(e.Value)
		}
		if len(chunk) > 0 {
			yield(chunk, nil)
		}
	}
}

// Import writes the chunks as kine would (Create or Update of each key). A key whose current
// value is already the imported one is left as is, so a retried import converges.
func (d *Driver) Import(ctx context.Context, cfg datastore.Config, t datastore.Tenant, chunks iter.Seq2[[]datastore.KeyValue, error]) (datastore.ImportResult, error) {
	var res datastore.ImportResult
	s, js, kv, err := d.bucket(ctx, cfg, t)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		name, _ := bucketName(t)
		kv, err = js.CreateKeyValue(ctx, s.kvConfig(name))
	}
	if err != nil {
		return res, err
	}
	for kvs, err := range chunks {
		if err != nil {
			return res, err
		}
		for _, x := range kvs {
			if err := putKine(ctx, kv, "/"+string(x.Key), x.Value); err != nil {
				return res, fmt.Errorf("write %q: %w", "/"+string(x.Key), err)
			}
			res.Keys++
			res.Bytes += int64(len(x.Key) + len(x.Value))
		}
	}
	return res, nil
}
