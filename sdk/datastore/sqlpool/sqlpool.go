// Package sqlpool caches database/sql connection pools for datastore plugins: a plugin gets the
// whole DataStore configuration on every call, and a TLS handshake plus authentication each
// time would dominate a reconcile. Pools are keyed by a hash of what identifies a connection,
// bounded in number, and an idle one is closed first when the bound is passed.
package sqlpool

import (
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"sync"
	"time"
)

// DefaultMax bounds the pools kept to distinct servers (or credentials); a few DataStores per
// management cluster is the norm.
const DefaultMax = 16

// Key identifies a connection: see NewKey.
type Key [sha256.Size]byte

// Pool caches one *sql.DB per Key. The zero value is not usable: call New.
type Pool struct {
	mu  sync.Mutex
	max int
	dbs map[Key]*pooled
}

type pooled struct {
	db       *sql.DB
	users    int
	lastUsed time.Time
}

// New returns an empty cache of at most max idle pools (pools in use are never closed).
func New(max int) *Pool { return &Pool{max: max, dbs: map[Key]*pooled{}} }

// NewKey hashes what identifies a connection (address, TLS material, credentials...), each part
// length-prefixed. Rotated credentials give a new key, so a stale pool is never reused; it ages
// out instead.
func NewKey(parts ...[]byte) Key {
	h := sha256.New()
	for _, b := range parts {
		_ = binary.Write(h, binary.BigEndian, uint64(len(b)))
		h.Write(b)
	}
	var k Key
	h.Sum(k[:0])
	return k
}

// Get returns the pool for key, opening it with open, and a release func to call when done.
func (p *Pool) Get(key Key, open func() (*sql.DB, error)) (*sql.DB, func(), error) {
	p.mu.Lock()
	if e, ok := p.dbs[key]; ok {
		e.users++
		e.lastUsed = time.Now()
		p.mu.Unlock()
		return e.db, p.releaser(e), nil
	}
	p.mu.Unlock()
	db, err := open() // sql.OpenDB does not dial: cheap, but keep it outside the lock anyway
	if err != nil {
		return nil, nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.dbs[key]; ok {
		_ = db.Close()
		e.users++
		e.lastUsed = time.Now()
		return e.db, p.releaser(e), nil
	}
	e := &pooled{db: db, users: 1, lastUsed: time.Now()}
	p.dbs[key] = e
	p.evictLocked()
	return db, p.releaser(e), nil
}

func (p *Pool) releaser(e *pooled) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			e.users--
			p.mu.Unlock()
		})
	}
}

// evictLocked closes the least recently used idle pools beyond max; a pool in use is never
// closed under a caller's feet.
func (p *Pool) evictLocked() {
	for len(p.dbs) > p.max {
		var oldest Key
		var found *pooled
		for k, e := range p.dbs {
			if e.users == 0 && (found == nil || e.lastUsed.Before(found.lastUsed)) {
				oldest, found = k, e
			}
		}
		if found == nil {
			return
		}
		_ = found.db.Close()
		delete(p.dbs, oldest)
	}
}

// Len is the number of cached pools.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.dbs)
}

// Close closes every cached pool.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, e := range p.dbs {
		_ = e.db.Close()
		delete(p.dbs, k)
	}
}
