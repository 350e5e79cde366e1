package driver

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk/datastore"
)

// maxClients bounds the etcd clients kept: one per DataStore (and per credentials), and an
// admin cluster has a few DataStores.
const maxClients = 8

// clientCache keeps one etcd client per connection-relevant configuration. Every call carries the
// whole configuration, and a TLS handshake per call would dominate a reconcile.
type clientCache struct {
	mu      sync.Mutex
	max     int
	entries map[[sha256.Size]byte]*cachedClient
}

type cachedClient struct {
	cli   *clientv3.Client
	users int
	used  time.Time
}

func newClientCache(max int) *clientCache {
	return &clientCache{max: max, entries: map[[sha256.Size]byte]*cachedClient{}}
}

// cacheKey hashes what identifies a connection: rotated credentials give another key, so a
// client with old credentials is never reused (it ages out instead).
func cacheKey(cfg datastore.Config, srv []string) [sha256.Size]byte {
	h := sha256.New()
	field := func(b []byte) {
		_ = binary.Write(h, binary.BigEndian, uint64(len(b)))
		h.Write(b)
	}
	for _, s := range srv {
		field([]byte(s))
	}
	for _, b := range [][]byte{cfg.CACert, cfg.ClientCert, cfg.ClientKey, []byte(cfg.Username), []byte(cfg.Password)} {
		field(b)
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// get returns a client for cfg and the func to call when done with it.
func (c *clientCache) get(cfg datastore.Config, srv []string) (*clientv3.Client, func(), error) {
	k := cacheKey(cfg, srv)
	c.mu.Lock()
	if e, ok := c.entries[k]; ok {
		e.users++
		e.used = time.Now()
		c.mu.Unlock()
		return e.cli, c.release(e), nil
	}
	c.mu.Unlock()
	// Dial outside the lock: with a password, clientv3.New talks to etcd, and one unreachable
	// etcd must not hold up calls for the others.
	tlsCfg, err := cfg.ClientTLS("")
	if err != nil {
		return nil, nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   srv,
		TLS:         tlsCfg,
		Username:    cfg.Username,
		Password:    cfg.Password,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, nil, status.Errorf(codes.Unavailable, "endpoints: connect to etcd at %v: %v", srv, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok { // another call dialled the same etcd meanwhile: use its client
		_ = cli.Close()
		e.users++
		e.used = time.Now()
		return e.cli, c.release(e), nil
	}
	e := &cachedClient{cli: cli, users: 1, used: time.Now()}
	c.entries[k] = e
	c.evictLocked()
	return cli, c.release(e), nil
}

func (c *clientCache) release(e *cachedClient) func() {
	return func() {
		c.mu.Lock()
		e.users--
		c.mu.Unlock()
	}
}

// evictLocked closes the least recently used idle clients beyond max; a client in use is never
// closed under its caller.
func (c *clientCache) evictLocked() {
	for len(c.entries) > c.max {
		var oldest [sha256.Size]byte
		var found *cachedClient
		for k, e := range c.entries {
			if e.users == 0 && (found == nil || e.used.Before(found.used)) {
				oldest, found = k, e
			}
		}
		if found == nil {
			return
		}
		_ = found.cli.Close()
		delete(c.entries, oldest)
	}
}

func (c *clientCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *clientCache) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		_ = e.cli.Close()
		delete(c.entries, k)
	}
}
