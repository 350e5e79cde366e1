// Package tenant gives the core its access to the tenant clusters: one client per tenant,
// reused across reconciles, built from the TenantControlPlane's admin kubeconfig, with watches
// restricted to the objects the core applies there (label-selected, metadata only). There is
// no tenant-wide cache. A tenant's client and its watches are stopped while its control plane
// sleeps and built again when it wakes.
//
// Sub-packages build what the core applies inside the tenant: phases (kubeadm's objects) and
// addons (rendered addon objects, their customisation and pruning).
package tenant

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Options tune Clients.
type Options struct {
	// Dial maps the server URL of a tenant kubeconfig (such as https://10.96.4.1:6443) to the URL
	// the core actually dials. The identity when nil. It is the seam for tests and for
	// managers that reach tenants through another address than the kubeconfig's: TLS is still
	// verified against the kubeconfig's host.
	Dial func(server string) string
	// Scheme decodes typed objects; unstructured objects need none.
	Scheme *runtime.Scheme
	Log    logr.Logger
}

// Clients holds the client of every tenant the core is talking to.
type Clients struct {
	opts Options

	mu      sync.Mutex
	tenants map[types.NamespacedName]*Client
	notify  func(types.NamespacedName)
}

// NewClients prepares an empty set; clients are built on first use.
func NewClients(opts Options) *Clients {
	return &Clients{opts: opts, tenants: map[types.NamespacedName]*Client{}}
}

// SetNotify sets the function told about changes to watched objects: the TCP controller
// enqueues the tenant's TenantControlPlane. Changes seen before it is set are dropped.
func (c *Clients) SetNotify(fn func(types.NamespacedName)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notify = fn
}

func (c *Clients) notifyFor(key types.NamespacedName) {
	c.mu.Lock()
	fn := c.notify
	c.mu.Unlock()
	if fn != nil {
		fn(key)
	}
}

// Get returns the tenant's client, building it when there is none or when the kubeconfig
// changed (a reissued certificate, a moved endpoint): the previous one is then stopped.
func (c *Clients) Get(key types.NamespacedName, kubeconfig []byte) (*Client, error) {
	sum := checksum(kubeconfig)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.tenants[key]; cur != nil {
		if cur.sum == sum {
			return cur, nil
		}
		cur.stop()
		delete(c.tenants, key)
	}
	cl, err := newClient(key, kubeconfig, sum, c.opts, func() { c.notifyFor(key) })
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", key, err)
	}
	c.tenants[key] = cl
	return cl, nil
}

// Stop stops the tenant's watches and forgets its client: the TCP sleeps or is gone.
func (c *Clients) Stop(key types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.tenants[key]; cur != nil {
		cur.stop()
		delete(c.tenants, key)
	}
}

// Active tells whether the core holds a client for the tenant.
func (c *Clients) Active(key types.NamespacedName) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tenants[key] != nil
}

// Watching lists the resources watched in the tenant, sorted; none once stopped.
func (c *Clients) Watching(key types.NamespacedName) []schema.GroupVersionResource {
	c.mu.Lock()
	cur := c.tenants[key]
	c.mu.Unlock()
	if cur == nil {
		return nil
	}
	out := slices.Collect(maps.Keys(cur.watchedResources()))
	slices.SortFunc(out, func(a, b schema.GroupVersionResource) int {
		if x, y := a.String(), b.String(); x < y {
			return -1
		} else if x > y {
			return 1
		}
		return 0
	})
	return out
}

// Close stops every tenant client (the manager exits).
func (c *Clients) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, cur := range c.tenants {
		cur.stop()
		delete(c.tenants, k)
	}
}

func checksum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
