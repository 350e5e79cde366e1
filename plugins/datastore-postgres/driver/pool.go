package driver

import (
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"sync"
	"time"
)

// maxCachedPools bounds the administrative connection pools kept to distinct servers (or
// credentials); a few DataStores per management cluster is the norm.
const maxCachedPools = 16

// pool caches one *sql.DB per connection-relevant configuration: plugins get the whole
// configuration on every call, and a TLS handshake plus authentication each time would dominate
// a reconcile.
type pool struct {
	mu  sync.Mutex
	max int
	dbs map[[sha256.Size]byte]*pooled
}

type pooled struct {
	db       *sql.DB
	users    int
	lastUsed time.Time
}

func newPool(max int) *pool { return &pool{max: max, dbs: map[[sha256.Size]byte]*pooled{}} }

// poolKey hashes what identifies a connection. Rotated credentials give a new key, so a stale
// pool is never reused; it ages out instead.
func poolKey(parts ...[]byte) [sha256.Size]byte {
	h := sha256.New()
	for _, b := range parts {
		_ = binary.Write(h, binary.BigEndian, uint64(len(b)))
		h.Write(b)
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// get returns the pool for key, opening it with open, and a release func to call when done.
func (p *pool) get(key [sha256.Size]byte, open func() (*sql.DB, error)) (*sql.DB, func(), error) {
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

func (p *pool) releaser(e *pooled) func() {
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
func (p *pool) evictLocked() {
	for len(p.dbs) > p.max {
		var oldest [sha256.Size]byte
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

func (p *pool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.dbs)
}

func (p *pool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, e := range p.dbs {
		_ = e.db.Close()
		delete(p.dbs, k)
	}
}
