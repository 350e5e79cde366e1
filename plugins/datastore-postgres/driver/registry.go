package driver

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/datastore/sqlpool"
)

// The owner registry records which TenantControlPlane (namespace, name, uid) holds each tenant
// database and role: one row per (kind, name), in a database of the administrative role's own
// that no other role may connect to. A role that is not a superuser reads only what it owns or
// is granted, hence one registry per administrative role rather than one per server.
//
// A claim is an INSERT that does nothing on conflict, read back in the same transaction: of two
// concurrent claims on one name, the second waits for the first to commit and then finds it.

const (
	// registryPrefix starts the name of every registry database; tenant schemas may not.
	registryPrefix = "kamaji_registry"
	// registryTable is the registry in its database.
	registryTable = "public.owners"

	kindSchema = "schema"
	kindUser   = "user"
)

var registrySchema = []string{
	`CREATE TABLE IF NOT EXISTS ` + registryTable + ` (
		kind text NOT NULL CHECK (kind IN ('schema', 'user')),
		name text NOT NULL,
		owner_namespace text NOT NULL,
		owner_name text NOT NULL,
		owner_uid text NOT NULL,
		claimed_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (kind, name)
	)`,
	// Nobody but its owner (and superusers) reads it, whatever default privileges say.
	`REVOKE ALL ON ` + registryTable + ` FROM PUBLIC`,
}

// registryDB is the registry database of the administrative role admin.
func registryDB(admin string) string {
	if name := registryPrefix + "_" + admin; len(name) <= maxIdentBytes {
		return name
	}
	sum := sha256.Sum256([]byte(admin))
	return registryPrefix + "_" + hex.EncodeToString(sum[:8])
}

// withClaims runs fn in a transaction on the owner registry, creating the registry the first
// time this process meets it, and again should it have been dropped since.
func (d *Driver) withClaims(ctx context.Context, s *settings, fn func(*sql.Tx) error) error {
	name := registryDB(s.user)
	key := s.poolKey(name)
	for attempt := 0; ; attempt++ {
		if _, ok := d.ready.Load(key); !ok {
			if err := d.ensureRegistry(ctx, s, name, key); err != nil {
				return err
			}
		}
		reg, release, err := d.adminOn(s, name)
		if err != nil {
			return err
		}
		err = inTx(ctx, reg, fn)
		release()
		// No such database or table; or a pooled connection to it ended by DROP DATABASE (FORCE)
		// or a server restart.
		if code := pgCode(err); attempt == 0 && (code == "3D000" || code == "42P01" || code == "57P01") {
			d.ready.Delete(key)
			continue
		}
		return err
	}
}

// ensureRegistry creates the registry, one caller at a time in this process: concurrent GRANT
// and REVOKE on one database fail ("tuple concurrently updated").
func (d *Driver) ensureRegistry(ctx context.Context, s *settings, name string, key sqlpool.Key) error {
	d.creating.Lock()
	defer d.creating.Unlock()
	if _, ok := d.ready.Load(key); ok {
		return nil
	}
	if err := d.createRegistry(ctx, s, name); err != nil {
		return err
	}
	d.ready.Store(key, true)
	return nil
}

// createRegistry creates the registry database (owned by the administrative role, CONNECT
// revoked from PUBLIC) and its table. Each step tolerates what exists, and a concurrent caller
// doing the same.
func (d *Driver) createRegistry(ctx context.Context, s *settings, name string) error {
	admin, release, err := d.admin(s)
	if err != nil {
		return err
	}
	defer release()
	var mine sql.NullBool
	lookup := func() error {
		return admin.QueryRowContext(ctx, "SELECT pg_get_userbyid(datdba) = current_user FROM pg_database WHERE datname = $1", name).Scan(&mine)
	}
	if err = lookup(); errors.Is(err, sql.ErrNoRows) {
		_, cerr := admin.ExecContext(ctx, "CREATE DATABASE "+quoteIdent(name)+" ENCODING 'UTF8' TEMPLATE template0")
		// duplicate_database, or the catalog's unique index when a concurrent caller won
		if code := pgCode(cerr); cerr != nil && code != "42P04" && code != "23505" {
			return fmt.Errorf("create the owner registry database %s: %w", quoteIdent(name), cerr)
		}
		err = lookup()
	}
	if err != nil {
		return fmt.Errorf("look up the owner registry database %s: %w", quoteIdent(name), err)
	}
	if !mine.Bool {
		return status.Errorf(codes.FailedPrecondition, "username: the owner registry database %s does not belong to role %q; drop or rename it", quoteIdent(name), s.user)
	}
	if err := revokePublic(ctx, admin, name); err != nil {
		return err
	}
	reg, releaseReg, err := d.adminOn(s, name)
	if err != nil {
		return err
	}
	defer releaseReg()
	err = inTx(ctx, reg, func(tx *sql.Tx) error {
		for _, stmt := range registrySchema {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
	// A concurrent caller (another plugin process) created it, or revoked at the same time.
	if code := pgCode(err); code == "23505" || code == "42P07" || code == "XX000" {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("create the owner registry in %s: %w", quoteIdent(name), err)
	}
	return nil
}

// claimState is what a claim found.
type claimState int

const (
	claimOther claimState = iota // recorded for another owner
	claimMine                    // recorded for the caller
	claimFresh                   // recorded for nobody until this claim
)

// part is a tenant's schema or user as the registry records it.
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

// errRetry: a record vanished between the conflicting INSERT and its read; claim again.
var errRetry = errors.New("owner record changed during the claim")

// claim records p for o unless another owner holds it, and says which.
func claim(ctx context.Context, tx *sql.Tx, p *part, o datastore.Owner) error {
	var inserted bool
	err := tx.QueryRowContext(ctx, "INSERT INTO "+registryTable+" (kind, name, owner_namespace, owner_name, owner_uid) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, name) DO NOTHING RETURNING true",
		p.kind, p.name, o.Namespace, o.Name, o.UID).Scan(&inserted)
	if err == nil {
		p.state, p.owner = claimFresh, o
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("claim %s %q: %w", p.kind, p.name, err)
	}
	err = tx.QueryRowContext(ctx, "SELECT owner_namespace, owner_name, owner_uid FROM "+registryTable+" WHERE kind = $1 AND name = $2 FOR UPDATE",
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
		if _, err := tx.ExecContext(ctx, "UPDATE "+registryTable+" SET owner_namespace = $3, owner_name = $4, owner_uid = $5 WHERE kind = $1 AND name = $2",
			p.kind, p.name, o.Namespace, o.Name, o.UID); err != nil {
			return fmt.Errorf("update the owner of %s %q: %w", p.kind, p.name, err)
		}
		p.owner = o
	}
	return nil
}

// claimTenant claims n's database, then its role (always in this order, so that concurrent
// claims cannot deadlock).
func claimTenant(ctx context.Context, tx *sql.Tx, n names, o datastore.Owner) (schema, user part, err error) {
	schema, user = part{kind: kindSchema, name: n.db}, part{kind: kindUser, name: n.role}
	if err := claim(ctx, tx, &schema, o); err != nil {
		return schema, user, err
	}
	err = claim(ctx, tx, &user, o)
	return schema, user, err
}

// unclaim removes p's record if it still names o.
func unclaim(ctx context.Context, q execer, p part, o datastore.Owner) error {
	_, err := q.ExecContext(ctx, "DELETE FROM "+registryTable+" WHERE kind = $1 AND name = $2 AND owner_namespace = $3 AND owner_name = $4 AND owner_uid = $5",
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
// when PostgreSQL aborted it for a deadlock or a serialization failure.
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
		if code := pgCode(err); err == nil || (code != "40P01" && code != "40001" && !errors.Is(err, errRetry)) {
			return err
		}
	}
	return err
}

// poolKey identifies the administrative pool on database db.
func (s *settings) poolKey(db string) sqlpool.Key {
	return sqlpool.NewKey([]byte(s.addr()), []byte(s.sslmode), []byte(db), s.cfg.CACert, s.cfg.ClientCert, s.cfg.ClientKey, []byte(s.user), []byte(s.password))
}

// revokePublic takes PUBLIC's default privileges (CONNECT, TEMPORARY) on database name away,
// unless that is done already. A concurrent caller doing the same makes PostgreSQL fail with
// "tuple concurrently updated": it then looks again.
func revokePublic(ctx context.Context, db *sql.DB, name string) error {
	public := func() (bool, error) {
		var p bool
		err := db.QueryRowContext(ctx, "SELECT datacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(datacl) a WHERE a.grantee = 0) FROM pg_database WHERE datname = $1", name).Scan(&p)
		if err != nil {
			return false, fmt.Errorf("privileges of database %s: %w", quoteIdent(name), err)
		}
		return p, nil
	}
	for attempt := 0; ; attempt++ {
		if p, err := public(); err != nil || !p {
			return err
		}
		_, err := db.ExecContext(ctx, "REVOKE ALL ON DATABASE "+quoteIdent(name)+" FROM PUBLIC")
		if err == nil || pgCode(err) != "XX000" || attempt == 3 {
			if err != nil {
				return fmt.Errorf("revoke PUBLIC's privileges on %s: %w", quoteIdent(name), err)
			}
			return nil
		}
	}
}
