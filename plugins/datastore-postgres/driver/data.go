package driver

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"strings"
	"unicode/utf8"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// A tenant's data is kine's table "kine" in the tenant's database: one row per revision of a
// key, the current value of a key being its row with the highest id, unless that row marks a
// deletion. The apiserver's keys start with "/"; kine's own bookkeeping rows
// ("compact_rev_key") do not, and are neither exported nor counted.

const (
	// chunkKeys and chunkBytes bound an Export chunk, well under gRPC's 4 MiB message limit.
	chunkKeys      = 500
	chunkBytes     = 3 << 20
	errNoSuchTable = "42P01" // undefined_table
	errNoSuchDB    = "3D000" // invalid_catalog_name
)

// kineSchema is kine's own (v0.17) PostgreSQL schema, so that kine finds the table it expects
// when an Import ran before the tenant's kine ever started.
var kineSchema = []string{
	`CREATE TABLE IF NOT EXISTS kine
		(
			id BIGSERIAL PRIMARY KEY,
			name text COLLATE "C",
			created INTEGER,
			deleted INTEGER,
			create_revision BIGINT,
			prev_revision BIGINT,
			lease INTEGER,
			value bytea,
			old_value bytea
		)`,
	`CREATE INDEX IF NOT EXISTS kine_name_index ON kine (name)`,
	`CREATE INDEX IF NOT EXISTS kine_name_id_index ON kine (name,id)`,
	`CREATE INDEX IF NOT EXISTS kine_id_deleted_index ON kine (id,deleted)`,
	`CREATE INDEX IF NOT EXISTS kine_prev_revision_index ON kine (prev_revision)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision_uindex ON kine (name, prev_revision)`,
	`CREATE INDEX IF NOT EXISTS kine_list_query_index on kine(name, id DESC, deleted)`,
}

// currentSQL selects the current (latest, not deleted) row of every apiserver key.
const currentSQL = `SELECT %s FROM kine AS kv JOIN (SELECT MAX(id) AS id FROM kine GROUP BY name) AS cur
	ON kv.id = cur.id WHERE kv.deleted = 0 AND kv.name LIKE '/%%'`

// asTenant starts a transaction on the tenant's database acting as the tenant's role, so that
// what it creates belongs to the tenant and it reads nothing the tenant could not.
func asTenant(ctx context.Context, db *sql.DB, n names, opts *sql.TxOptions) (*sql.Tx, error) {
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, "SET LOCAL ROLE "+quoteIdent(n.role)); err != nil {
		_ = tx.Rollback()
		return nil, fmt.Errorf("act as role %s: %w", quoteIdent(n.role), err)
	}
	return tx, nil
}

// GetUsage counts each tenant's current keys and their bytes (key plus value); the total is
// the size of every database of the server, its key count unknown.
func (d *Driver) GetUsage(ctx context.Context, cfg datastore.Config, tenants []datastore.Tenant) (datastore.UsageReport, error) {
	s, err := parseConfig(cfg, d.opts.KineImage)
	if err != nil {
		return datastore.UsageReport{}, err
	}
	all := make([]names, len(tenants))
	for i, t := range tenants {
		if all[i], err = tenantNames(t, s.user, s.adminDB); err != nil {
			return datastore.UsageReport{}, err
		}
	}
	var rep datastore.UsageReport
	for i, t := range tenants {
		u, err := s.usage(ctx, all[i])
		if err != nil {
			return datastore.UsageReport{}, err
		}
		rep.Tenants = append(rep.Tenants, datastore.TenantUsage{Tenant: t, Usage: u})
	}
	rep.Total = datastore.Usage{Keys: -1, Bytes: -1}
	db, release, err := d.admin(s)
	if err != nil {
		return datastore.UsageReport{}, err
	}
	defer release()
	var total sql.NullInt64
	// pg_database_size needs CONNECT on each database: a database the role cannot measure
	// makes the total unknown rather than wrong.
	if err := db.QueryRowContext(ctx, "SELECT SUM(pg_database_size(datname))::bigint FROM pg_database WHERE datallowconn").Scan(&total); err == nil && total.Valid {
		rep.Total.Bytes = total.Int64
	}
	return rep, nil
}

func (s *settings) usage(ctx context.Context, n names) (datastore.Usage, error) {
	u := datastore.Usage{}
	db, err := s.tenantDB(n)
	if err != nil {
		return u, err
	}
	defer db.Close()
	tx, err := asTenant(ctx, db, n, &sql.TxOptions{ReadOnly: true})
	if code := pgCode(err); code == errNoSuchDB || code == "22023" { // not provisioned (no database, no role)
		return u, nil
	}
	if err != nil {
		return u, fmt.Errorf("usage of %s: %w", quoteIdent(n.db), err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	err = tx.QueryRowContext(ctx, fmt.Sprintf(currentSQL, "COUNT(*), COALESCE(SUM(octet_length(kv.name) + octet_length(kv.value)), 0)")).Scan(&u.Keys, &u.Bytes)
	if err != nil && pgCode(err) != errNoSuchTable {
		return u, fmt.Errorf("usage of %s: %w", quoteIdent(n.db), err)
	}
	return u, nil
}

// Export streams the tenant's current keys relative to "/", from one consistent snapshot.
func (d *Driver) Export(ctx context.Context, cfg datastore.Config, t datastore.Tenant) iter.Seq2[[]datastore.KeyValue, error] {
	return func(yield func([]datastore.KeyValue, error) bool) {
		s, err := parseConfig(cfg, d.opts.KineImage)
		if err != nil {
			yield(nil, err)
			return
		}
		n, err := tenantNames(t, s.user, s.adminDB)
		if err != nil {
			yield(nil, err)
			return
		}
		db, err := s.tenantDB(n)
		if err != nil {
			yield(nil, err)
			return
		}
		defer db.Close()
		tx, err := asTenant(ctx, db, n, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
		if err != nil {
			yield(nil, fmt.Errorf("export %s: %w", quoteIdent(n.db), err))
			return
		}
		defer tx.Rollback() //nolint:errcheck // read-only
		rows, err := tx.QueryContext(ctx, fmt.Sprintf(currentSQL, "kv.name, kv.value")+" ORDER BY kv.name")
		if pgCode(err) == errNoSuchTable {
			return // kine never started: nothing to export
		}
		if err != nil {
			yield(nil, fmt.Errorf("read kine's table in %s: %w", quoteIdent(n.db), err))
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
			if value == nil {
				value = []byte{}
			}
			chunk = append(chunk, datastore.KeyValue{Key: []byte(name[1:]), Value: value})
			size += len(name) + len(value)
		}
		if err := rows.Err(); err != nil {
			yield(nil, fmt.Errorf("read kine's table in %s: %w", quoteIdent(n.db), err))
			return
		}
		if len(chunk) > 0 {
			yield(chunk, nil)
		}
	}
}

// Import writes the chunks as kine would write them (a new revision per changed key), one
// transaction per chunk, acting as the tenant's role. A key whose current value is already the
// imported one is left as is, so a retried import converges without growing the history.
func (d *Driver) Import(ctx context.Context, cfg datastore.Config, t datastore.Tenant, chunks iter.Seq2[[]datastore.KeyValue, error]) (datastore.ImportResult, error) {
	var res datastore.ImportResult
	s, err := parseConfig(cfg, d.opts.KineImage)
	if err != nil {
		return res, err
	}
	n, err := tenantNames(t, s.user, s.adminDB)
	if err != nil {
		return res, err
	}
	db, err := s.tenantDB(n)
	if err != nil {
		return res, err
	}
	defer db.Close()
	if err := ensureKineTable(ctx, db, n); err != nil {
		return res, err
	}
	for kvs, err := range chunks {
		if err != nil {
			return res, err
		}
		if err := importChunk(ctx, db, n, kvs); err != nil {
			return res, err
		}
		for _, kv := range kvs {
			res.Keys++
			res.Bytes += int64(len(kv.Key) + len(kv.Value))
		}
	}
	return res, nil
}

func ensureKineTable(ctx context.Context, db *sql.DB, n names) error {
	tx, err := asTenant(ctx, db, n, nil)
	if err != nil {
		return fmt.Errorf("import into %s: %w", quoteIdent(n.db), err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit, a no-op
	for _, stmt := range kineSchema {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create kine's table in %s: %w", quoteIdent(n.db), err)
		}
	}
	return tx.Commit()
}

func importChunk(ctx context.Context, db *sql.DB, n names, kvs []datastore.KeyValue) error {
	tx, err := asTenant(ctx, db, n, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit, a no-op
	latest, err := tx.PrepareContext(ctx, "SELECT id, create_revision, deleted, value FROM kine WHERE name = $1 ORDER BY id DESC LIMIT 1 FOR UPDATE")
	if err != nil {
		return err
	}
	defer latest.Close()
	insert, err := tx.PrepareContext(ctx, "INSERT INTO kine (name, created, deleted, create_revision, prev_revision, lease, value, old_value) VALUES ($1, $2, 0, $3, $4, 0, $5, $6)")
	if err != nil {
		return err
	}
	defer insert.Close()
	for _, kv := range kvs {
		key := "/" + string(kv.Key)
		if strings.IndexByte(key, 0) >= 0 || !utf8.ValidString(key) {
			return sdk.InvalidField("key", "%q is not valid UTF-8 text, which kine's PostgreSQL table requires", key)
		}
		var id, createRev, deleted sql.NullInt64
		var old []byte
		err := latest.QueryRowContext(ctx, key).Scan(&id, &createRev, &deleted, &old)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = insert.ExecContext(ctx, key, 1, 0, 0, nonNil(kv.Value), nil)
		case err != nil:
		case deleted.Int64 != 0:
			// Re-created after a deletion: the new row points at the tombstone.
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
			return fmt.Errorf("write %q into %s: %w", key, quoteIdent(n.db), err)
		}
	}
	return tx.Commit()
}

// nonNil stores an empty value as an empty bytea rather than NULL, as kine does.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
