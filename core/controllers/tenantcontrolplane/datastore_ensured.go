package tenantcontrolplane

import (
	"crypto/sha256"
	"encoding/binary"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// DefaultDataStoreVerifyInterval is how long a successful EnsureTenant is trusted for a TCP
// whose inputs did not change: a pass after it (plus up to a fifth, jittered, so that TCPs
// provisioned together do not verify together) calls the plugin again.
const DefaultDataStoreVerifyInterval = 10 * time.Minute

// ensuredSlices remembers, in memory, the slices this manager ensured and what for: the
// fingerprint of every input of the call and the connection the plugin answered. A pass whose
// inputs are the same as a recent successful call uses that connection instead of calling the
// plugin again, so that a TCP at rest costs its datastore nothing. A restarted manager starts
// empty: each TCP's first pass calls the plugin.
type ensuredSlices struct {
	mu      sync.Mutex
	records map[types.NamespacedName]map[string]ensuredSlice
}

type ensuredSlice struct {
	sum  [32]byte
	conn datastore.Connection
	due  time.Time
}

// lookup returns the connection of the slice (role: "main" or "override/<DataStore>") ensured
// for the same inputs, unless its verification is due.
func (e *ensuredSlices) lookup(tcp types.NamespacedName, role string, sum [32]byte, now time.Time) (datastore.Connection, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rec, ok := e.records[tcp][role]
	if !ok || rec.sum != sum || !now.Before(rec.due) {
		return datastore.Connection{}, false
	}
	return rec.conn, true
}

// remember records a successful EnsureTenant.
func (e *ensuredSlices) remember(tcp types.NamespacedName, role string, sum [32]byte, conn datastore.Connection, now time.Time, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultDataStoreVerifyInterval
	}
	due := now.Add(interval + rand.N(interval/5+1))
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.records == nil {
		e.records = map[types.NamespacedName]map[string]ensuredSlice{}
	}
	if e.records[tcp] == nil {
		e.records[tcp] = map[string]ensuredSlice{}
	}
	e.records[tcp][role] = ensuredSlice{sum: sum, conn: conn, due: due}
}

// forget drops every record of the TCP: it is deleted, migrating, or a slice of it was removed.
func (e *ensuredSlices) forget(tcp types.NamespacedName) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.records, tcp)
}

// ensureInputs fingerprints everything an EnsureTenant depends on: the TCP (by UID: a TCP
// created again under the same name is a new tenant), the DataStore (by UID and generation: one
// deleted and created again may be another backend), its driver, the resolved configuration
// (its Secrets' contents included) and the tenant's schema and user.
func ensureInputs(tcp *kamajiv1alpha1.TenantControlPlane, ds *kamajiv1alpha1.DataStore, cfg datastore.Config, t datastore.Tenant) [32]byte {
	h := sha256.New()
	str := func(s string) {
		_ = binary.Write(h, binary.BigEndian, uint64(len(s)))
		h.Write([]byte(s))
	}
	str(string(tcp.UID))
	str(string(ds.UID))
	_ = binary.Write(h, binary.BigEndian, ds.Generation)
	str(ds.Spec.Driver)
	str(cfg.Name)
	str(cfg.Driver)
	for _, ep := range cfg.Endpoints {
		str(ep)
	}
	str("|")
	for _, b := range [][]byte{cfg.CACert, cfg.CAKey, cfg.ClientCert, cfg.ClientKey} {
		str(string(b))
	}
	str(cfg.Username)
	str(cfg.Password)
	for _, k := range slices.Sorted(maps.Keys(cfg.Parameters)) {
		str(k)
		str(cfg.Parameters[k])
	}
	str("|")
	str(t.Namespace)
	str(t.Name)
	str(t.Schema)
	str(t.Username)
	str(t.UID)
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}
