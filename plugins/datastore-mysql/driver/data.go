package driver

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"iter"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// A tenant's data is kine's table "kine" in the tenant's database: one row per revision of a
// key, the current value of a key being its row with the highest id, unless that row marks a
// deletion. The apiserver's keys start with "/"; kine's own bookkeeping rows
// ("compact_rev_key") do not, and are neither exported nor counted.

const (
	// chunkKeys and chunkBytes bound an Export chunk, well under gRPC's 4 MiB message limit.
	chunkKeys  = 500
	chunkBytes = 3 << 20
	// maxKeyLen is kine's name column, VARCHAR(630) CHARACTER SET ascii.
	maxKeyLen = 630

	errNoSuchTable = 1146
	errDupKeyName  = 1061
)

// kineSchema is kine's own (v0.17) MySQL schema, so that kine finds the table it expects when
// an Import ran before the tenant's kine ever started.
var kineSchema = []string{
	`CREATE TABLE IF NOT EXISTS %s
		(
			id BIGINT UNSIGNED AUTO_INCREMENT,
			name VARCHAR(630) CHARACTER SET ascii,
			created INTEGER,
			deleted INTEGER,
			create_revision BIGINT UNSIGNED,
			prev_revision BIGINT UNSIGNED,
			lease INTEGER,
			value MEDIUMBLOB,
			old_value MEDIUMBLOB,
			PRIMARY KEY (id)
		)`,
	`CREATE INDEX kine_name_index ON %s (name)`,
	`CREATE INDEX kine_name_id_index ON %s (name,id)`,
	`CREATE INDEX kine_id_deleted_index ON %s (id,deleted)`,
	`CREATE INDEX kine_prev_revision_index ON %s (prev_revision)`,
	`CREATE UNIQUE INDEX kine_name_prev_revision_uindex ON %s (name, prev_revision)`,
}

func kineTable(db string) string { return quoteIdent(db) + ".kine" }

// currentSQL selects the current (latest, not deleted) row of every apiserver key.
func currentSQL(db, columns string) string {
	t := kineTable(db)
	return "SELECT " + columns + " FROM " + t + " AS kv JOIN (SELECT MAX(id) AS id FROM " + t +
		" GROUP BY name) AS cur ON kv.id = cur.id WHERE kv.deleted = 0 AND kv.name LIKE '/%'"
}

// GetUsage counts each tenant's current keys and their bytes (key plus value); the total is
// the server's on-disk size of every table, its key count unknown.
func (d *Driver) GetUsage(ctx context.Context, cfg datastore.Config, tenants []datastore.Tenant) (datastore.UsageReport, error) {
	s, err := parseConfig(cfg, d.opts.KineImage)
	if err != nil {
		return datastore.UsageReport{}, err
	}
	all := make([]names, len(tenants))
	for i, t := range tenants {
		if all[i], err = tenantNames(t, s.user); err != nil {
			return datastore.UsageReport{}, err
		}
	}
	db, release, err := d.admin(s)
	if err != nil {
		return datastore.UsageReport{}, err
	}
	defer release()

	var rep datastore.UsageReport
	for i, t := range tenants {
		u := datastore.Usage{}
		err := db.QueryRowContext(ctx, currentSQL(all[i].db, "COUNT(*), COALESCE(SUM(LENGTH(kv.name) + LENGTH(kv.value)), 0)")).Scan(&u.Keys, &u.Bytes)
		if err != nil && mysqlErrno(err) != errNoSuchTable && mysqlErrno(err) != 1049 {
			return datastore.UsageReport{}, fmt.Errorf("usage of %s: %w", quoteIdent(all[i].db), err)
		}
		rep.Tenants = append(rep.Tenants, datastore.TenantUsage{Tenant: t, Usage: u})
	}
	rep.Total = datastore.Usage{Keys: -1, Bytes: -1}
	var total sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT SUM(data_length + index_length) FROM information_schema.TABLES").Scan(&total); err == nil && total.Valid {
		rep.Total.Bytes = total.Int64
	}
	return rep, nil
}

// Export streams the tenant's current keys relative to "/", from one consistent snapshot.
func (d *Driver) Export(ctx context.Context, cfg datastore.Config, t datastore.Tenant) iter.Seq2[[]datastore.KeyValue, error] {
	return func(yield func([]datastore.KeyValue, error) bool) {
		s, err := parseConfig(cfg, d.opts.KineImage)
		if err != nil {
			yield(nil, err)
			return
		}
		n, err := tenantNames(t, s.user)
		if err != nil {
			yield(nil, err)
			return
		}
		db, release, err := d.admin(s)
		if err != nil {
			yield(nil, err)
			return
		}
		defer release()
		tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
		if err != nil {
			yield(nil, err)
			return
		}
		defer tx.Rollback() //nolint:errcheck // read-only
		rows, err := tx.QueryContext(ctx, currentSQL(n.db, "kv.name, kv.value")+" ORDER BY kv.name")
		if mysqlErrno(err) == errNoSuchTable {
			return // kine never started: nothing to export
		}
		if err != nil {
			yield(nil, fmt.Errorf("read %s: %w", kineTable(n.db), err))
			return
		}
		defer rows.Close()
		var chunk []datastore.KeyValue
		size := 0
		for rows.Next() {
			var name string
			var value []byte
			if err := rows.Scan(&name, &value); err != nil {
				yield(nil, err)
				return
			}
			if len(chunk) > 0 && (len(chunk) == chunkKeys || size+len(name)+len(value) > chunkBytes) {
				if !yield(chunk, nil) {
					return
				}
				chunk, size = nil, 0
			}
			chunk = append(chunk, datastore.KeyValue{Key: []byte(name[1:]), Value: value})
			size += len(name) + len(value)
		}
		if err := rows.Err(); err != nil {
			yield(nil, fmt.Errorf("read %s: %w", kineTable(n.db), err))
			return
		}
		if len(chunk) > 0 {
			yield(chunk, nil)
		}
	}
}

// Import writes the chunks as kine would write them (a new revision per changed key), one
// transaction per chunk. A key whose current value is already the imported one is left as is,
// so a retried import converges without growing the history.
func (d *Driver) Import(ctx context.Context, cfg datastore.Config, t datastore.Tenant, chunks iter.Seq2[[]datastore.KeyValue, error]) (datastore.ImportResult, error) {
	var res datastore.ImportResult
	s, err := parseConfig(cfg, d.opts.KineImage)
	if err != nil {
		return res, err
	}
	n, err := tenantNames(t, s.user)
	if err != nil {
		return res, err
	}
	db, release, err := d.admin(s)
	if err != nil {
		return res, err
	}
	defer release()
	if err := ensureKineTable(ctx, db, n.db); err != nil {
		return res, err
	}
	for kvs, err := range chunks {
		if err != nil {
			return res, err
		}
		if err := importChunk(ctx, db, n.db, kvs); err != nil {
			return res, err
		}
		for _, kv := range kvs {
			res.Keys++
			res.Bytes += int64(len(kv.Key) + len(kv.Value))
		}
	}
	return res, nil
}

func ensureKineTable(ctx context.Context, db *sql.DB, name string) error {
	var exists int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE table_schema = ? AND table_name = 'kine'", name).Scan(&exists)
	if err != nil {
		return fmt.Errorf("look up %s: %w", kineTable(name), err)
	}
	if exists > 0 {
		return nil
	}
	for _, stmt := range kineSchema {
		if _, err := db.ExecContext(ctx, fmt.Sprintf(stmt, kineTable(name))); err != nil && mysqlErrno(err) != errDupKeyName {
			return fmt.Errorf("create %s: %w", kineTable(name), err)
		}
	}
	return nil
}

func importChunk(ctx context.Context, db *sql.DB, name string, kvs []datastore.KeyValue) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit, a no-op
	t := kineTable(name)
	latest, err := tx.PrepareContext(ctx, "SELECT id, create_revision, deleted, value FROM "+t+" WHERE name = ? ORDER BY id DESC LIMIT 1 FOR UPDATE")
	if err != nil {
		return err
	}
	defer latest.Close()
	insert, err := tx.PrepareContext(ctx, "INSERT INTO "+t+" (name, created, deleted, create_revision, prev_revision, lease, value, old_value) VALUES (?, ?, 0, ?, ?, 0, ?, ?)")
	if err != nil {
		return err
	}
	defer insert.Close()
	for _, kv := range kvs {
		key := "/" + string(kv.Key)
		if err := checkKey(key); err != nil {
			return err
		}
		var id, createRev sql.NullInt64
		var deleted sql.NullInt64
		var old []byte
		err := latest.QueryRowContext(ctx, key).Scan(&id, &createRev, &deleted, &old)
		switch {
		case err == sql.ErrNoRows:
			_, err = insert.ExecContext(ctx, key, 1, 0, 0, nonNil(kv.Value), nil)
		case err != nil:
		case deleted.Int64 != 0:
			// Re-created after a deletion: a create revision pointing at the tombstone.
			_, err = insert.ExecContext(ctx, key, 1, 0, id.Int64, nonNil(kv.Value), nil)
		case bytes.Equal(old, kv.Value):
			continue
		default:
			cr := createRev.Int64
			if cr == 0 {
				cr = id.Int64
			}
			_, err = insert.ExecContext(ctx, key, 0, cr, id.Int64, nonNil(kv.Value), nonNil(old))
		}
		if err != nil {
			return fmt.Errorf("write %q into %s: %w", key, t, err)
		}
	}
	return tx.Commit()
}

func checkKey(key string) error {
	if len(key) > maxKeyLen {
		return sdk.InvalidField("key", "%q is longer than kine's %d bytes", key[:32]+"...", maxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if key[i] >= 0x80 {
			return sdk.InvalidField("key", "%q is not ASCII, which kine's MySQL table requires", key)
		}
	}
	return nil
}

// nonNil stores an empty value as an empty blob rather than NULL, as kine does.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
