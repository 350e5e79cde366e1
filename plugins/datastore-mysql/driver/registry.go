package driver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/datastore/sqlpool"
)

// The owner registry records which TenantControlPlane (namespace, name, uid) holds each tenant
// database and user name: one row per (kind, name) in the database kamaji_registry, which only
// accounts with global privileges (the DataStores' administrative users) reach; a tenant is
// granted its own database only, its name's wildcards escaped. Every DataStore on the server
// shares it, so names are owned server-wide.
//
// A claim is an INSERT that changes nothing on a duplicate key, then a locking read of the row
// in the same transaction: of two concurrent claims on one name, the second waits for the first
// to commit and then finds it.

const (
	// registryDB is the registry's database; no tenant schema may take the name.
	registryDB    = "kamaji_registry"
	registryTable = "`" + registryDB + "`.`owners`"

	kindSchema = "schema"
	kindUser   = "user"
)

var registrySchema = []string{
	"CREATE DATABASE IF NOT EXISTS `" + registryDB + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
	// Names compare as MySQL compares them: byte for byte (names with trailing spaces or
	// outside the BMP are refused before they get here).
	`CREATE TABLE IF NOT EXISTS ` + registryTable + ` (
		kind VARCHAR(8) NOT NULL,
		name VARCHAR(128) NOT NULL,
		owner_namespace VARCHAR(253) NOT NULL,
		owner_name VARCHAR(253) NOT NULL,
		owner_uid VARCHAR(128) NOT NULL,
		claimed_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
		PRIMARY KEY (kind, name)
	) ENGINE=InnoDB CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
}

// ensureRegistry creates the registry the first time this process meets the server (the
// statements tolerate what exists, and concurrent callers).
func (d *Driver) ensureRegistry(ctx context.Context, s *settings, db *sql.DB) error {
	key := s.poolKey()
	if _, ok := d.ready.Load(key); ok {
		return nil
	}
	for _, stmt := range registrySchema {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create the owner registry %s: %w", registryTable, err)
		}
	}
	d.ready.Store(key, true)
	return nil
}

// claimState is what a claim found.
type claimState int

const (
	claimOther claimState = iota // recorded for another owner
	claimMine                    // recorded for the caller
	claimFresh                   // recorded for nobody until this claim
)

// part is a tenant's database or user name as the registry records it.
type part struct {
	kind, name string
	state      claimState
	owner      datastore.Owner // who the record names
}

// sameOwner: the uid decides, except for a record written without one (by a core that sent
// none), which is the same owner when namespace and name match.
func sameOwner(rec, caller datastore.Owner) bool {
	if rec.UID == "" {
		return rec.Namespace == caller.Namespace && rec.Name == caller.Name
	}
	return rec.Same(caller)
}

// errRetry: a record vanished between the duplicate INSERT and its read; claim again.
var errRetry = errors.New("owner record changed during the claim")

// claim records p for o unless another owner holds it, and says which.
func claim(ctx context.Context, tx *sql.Tx, p *part, o datastore.Owner) error {
	res, err := tx.ExecContext(ctx, "INSERT INTO "+registryTable+" (kind, name, owner_namespace, owner_name, owner_uid) VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE kind = kind",
		p.kind, p.name, o.Namespace, o.Name, o.UID)
	if err != nil {
		return fmt.Errorf("claim %s %q: %w", p.kind, p.name, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		p.state, p.owner = claimFresh, o
		return nil
	}
	err = tx.QueryRowContext(ctx, "SELECT owner_namespace, owner_name, owner_uid FROM "+registryTable+" WHERE kind = ? AND name = ? FOR UPDATE",
		p.kind, p.name).Scan(&p.owner.Namespace, &p.owner.Name, &p.owner.UID)
	if errors.Is(err, sql.ErrNoRows) {
		return errRetry
	}
	if err != nil {
		return fmt.Errorf("read the owner of %s %q: %w", p.kind, p.name, err)
	}
	if !sameOwner(p.owner, o) {
		p.state = claimOther
		return nil
	}
	p.state = claimMine
	if p.owner != o {
		// A record without uid gets the caller's, so that the uid decides from now on.
		if _, err := tx.ExecContext(ctx, "UPDATE "+registryTable+" SET owner_namespace = ?, owner_name = ?, owner_uid = ? WHERE kind = ? AND name = ?",
			o.Namespace, o.Name, o.UID, p.kind, p.name); err != nil {
			return fmt.Errorf("update the owner of %s %q: %w", p.kind, p.name, err)
		}
		p.owner = o
	}
	return nil
}

// claimTenant claims n's database, then its user (always in this order, so that concurrent
// claims wait for each other in the same order).
func claimTenant(ctx context.Context, tx *sql.Tx, n names, o datastore.Owner) (schema, user part, err error) {
	schema, user = part{kind: kindSchema, name: n.db}, part{kind: kindUser, name: n.user}
	if err := claim(ctx, tx, &schema, o); err != nil {
		return schema, user, err
	}
	err = claim(ctx, tx, &user, o)
	return schema, user, err
}

// unclaim removes p's record if it still names o.
func unclaim(ctx context.Context, q execer, p part, o datastore.Owner) error {
	_, err := q.ExecContext(ctx, "DELETE FROM "+registryTable+" WHERE kind = ? AND name = ? AND owner_namespace = ? AND owner_name = ? AND owner_uid = ?",
		p.kind, p.name, o.Namespace, o.Name, o.UID)
	if err != nil {
		return fmt.Errorf("remove the owner record of %s %q: %w", p.kind, p.name, err)
	}
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// inTx runs fn in a transaction, committed when fn succeeds, and runs it again (a few times)
// when InnoDB chose it as a deadlock victim or its lock wait timed out.
func inTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt*attempt) * 20 * time.Millisecond):
			}
		}
		err = func() error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback() //nolint:errcheck // after Commit, a no-op
			if err := fn(tx); err != nil {
				return err
			}
			return tx.Commit()
		}()
		if code := mysqlErrno(err); err == nil || (code != 1213 && code != 1205 && !errors.Is(err, errRetry)) {
			return err
		}
	}
	return err
}

// poolKey identifies the administrative pool of s.
func (s *settings) poolKey() sqlpool.Key {
	return sqlpool.NewKey([]byte(s.addr), s.cfg.CACert, s.cfg.ClientCert, s.cfg.ClientKey, []byte(s.user), []byte(s.password))
}

// withClaims runs fn in a transaction on the registry, creating the registry first, and again
// should it have been dropped since this process last made sure of it.
func (d *Driver) withClaims(ctx context.Context, s *settings, db *sql.DB, fn func(*sql.Tx) error) error {
	for attempt := 0; ; attempt++ {
		if err := d.ensureRegistry(ctx, s, db); err != nil {
			return err
		}
		err := inTx(ctx, db, fn)
		if code := mysqlErrno(err); attempt == 0 && (code == 1049 || code == 1146) { // unknown database, no such table
			d.ready.Delete(s.poolKey())
			continue
		}
		return err
	}
}
