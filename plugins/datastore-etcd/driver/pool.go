package driver

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/openhcp/kamaji/sdk/datastore"
)

// maxCachedClients bounds the connections kept to distinct clusters (or credentials); a few
// DataStores per admin cluster is the norm.
const maxCachedClients = 16

// pool caches one etcd client per connection-relevant configuration: plugins get the whole
// configuration on every call, and dialling TLS each time would dominate a reconcile.
type pool struct {
	mu      sync.Mutex
	max     int
	clients map[[sha256.Size]byte]*pooled
}

type pooled struct {
	cli      *clientv3.Client
	users    int
	lastUsed time.Time
}

func newPool(max int) *pool {
	return &pool{max: max, clients: map[[sha256.Size]byte]*pooled{}}
}

// key hashes what identifies a connection. Rotated credentials give a new key, so a stale
// client is never reused; it ages out of the cache instead.
func key(cfg datastore.Config, servers []string) [sha256.Size]byte {
	h := sha256.New()
	field := func(b []byte) {
		_ = binary.Write(h, binary.BigEndian, uint64(len(b)))
		h.Write(b)
	}
	for _, s := range servers {
		field([]byte(s))
	}
	field(cfg.CACert)
	field(cfg.ClientCert)
	field(cfg.ClientKey)
	field([]byte(cfg.Username))
	field([]byte(cfg.Password))
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// get returns a client for cfg and a release func that must be called when the call is done.
func (p *pool) get(cfg datastore.Config, servers []string) (*clientv3.Client, func(), error) {
	k := key(cfg, servers)
	for {
		p.mu.Lock()
		if e, ok := p.clients[k]; ok {
			e.users++
			e.lastUsed = time.Now()
			p.mu.Unlock()
			return e.cli, p.releaser(e), nil
		}
		p.mu.Unlock()
		// Dial outside the lock: with password authentication clientv3.New talks to the cluster,
		// and one unreachable cluster must not stall calls for the others.
		cli, err := newClient(cfg, servers)
		if err != nil {
			return nil, nil, err
		}
		p.mu.Lock()
		if _, ok := p.clients[k]; ok {
			p.mu.Unlock()
			_ = cli.Close() // another call won the race; use its client
			continue
		}
		e := &pooled{cli: cli, users: 1, lastUsed: time.Now()}
		p.clients[k] = e
		p.evictLocked()
		p.mu.Unlock()
		return cli, p.releaser(e), nil
	}
}

func (p *pool) releaser(e *pooled) func() {
	return func() {
		p.mu.Lock()
		e.users--
		p.mu.Unlock()
	}
}

// evictLocked closes the least recently used idle clients beyond max. Clients in use are never
// closed under a caller's feet.
func (p *pool) evictLocked() {
	for len(p.clients) > p.max {
		var oldest [sha256.Size]byte
		var found *pooled
		for k, e := range p.clients {
			if e.users == 0 && (found == nil || e.lastUsed.Before(found.lastUsed)) {
				oldest, found = k, e
			}
		}
		if found == nil {
			return
		}
		_ = found.cli.Close()
		delete(p.clients, oldest)
	}
}

func (p *pool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.clients)
}

func (p *pool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, e := range p.clients {
		_ = e.cli.Close()
		delete(p.clients, k)
	}
}

func newClient(cfg datastore.Config, servers []string) (*clientv3.Client, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(cfg.CACert) {
		return nil, errors.New("caCert: no PEM certificate")
	}
	tlsCfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if len(cfg.ClientCert) > 0 {
		pair, err := tls.X509KeyPair(cfg.ClientCert, cfg.ClientKey)
		if err != nil {
			return nil, err
		}
		tlsCfg.Certificates = []tls.Certificate{pair}
	}
	return clientv3.New(clientv3.Config{
		Endpoints:   servers,
		TLS:         tlsCfg,
		Username:    cfg.Username,
		Password:    cfg.Password,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
}
