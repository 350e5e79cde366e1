// Package secretdata gives the data of the Secrets the manager owns (certificates, keys,
// kubeconfigs). The manager's cache keeps their metadata only: at a thousand tenants their data
// was a third of its live memory, yet a tenant at rest needs none of it. The data of the Secrets
// read or written lately is kept here, by resourceVersion, bounded in number and dropped after a
// while unused, so the passes of a tenant being provisioned or changed read it from memory; any
// other is read from the API (once per Secret after a restart, or after a rest).
package secretdata

import (
	"container/list"
	"context"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Reader fills cached Secrets with their data. Safe for concurrent use.
type Reader struct {
	api client.Reader
	max int
	ttl time.Duration

	mu    sync.Mutex
	order *list.List // of *entry, most recently used first
	byKey map[types.NamespacedName]*list.Element
	sweep *time.Timer // pending while anything is kept
}

type entry struct {
	key             types.NamespacedName
	resourceVersion string
	data            map[string][]byte
	used            time.Time
}

// New returns a Reader that keeps the data of at most max Secrets (at least one), each until it
// has not been used for ttl, and reads the others from api, an uncached reader.
func New(api client.Reader, max int, ttl time.Duration) *Reader {
	if max < 1 {
		max = 1
	}
	return &Reader{api: api, max: max, ttl: ttl, order: list.New(), byKey: map[types.NamespacedName]*list.Element{}}
}

// Fill gives s, a Secret as the cache holds it, its data. A Secret that already has data (read
// from the API, or from a cache that keeps data) is only remembered. Otherwise the data comes
// from memory when it is of s's resourceVersion, else from the API; when the API holds a newer
// version of the Secret, s becomes that version (the cache will show it soon). A Secret gone
// from the API gives the API's NotFound error.
func (r *Reader) Fill(ctx context.Context, s *corev1.Secret) error {
	if s.Data != nil {
		r.Remember(s)
		return nil
	}
	key := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
	if data, ok := r.lookup(key, s.ResourceVersion); ok {
		s.Data = data
		return nil
	}
	fresh := &corev1.Secret{}
	if err := r.api.Get(ctx, key, fresh); err != nil {
		return err
	}
	if fresh.Data == nil {
		fresh.Data = map[string][]byte{} // an empty Secret: not to be read again
	}
	r.Remember(fresh) // keeps a copy: s may be changed by its caller
	*s = *fresh
	return nil
}

// Remember records the data of s as the API returned it (from a read, an apply or a patch), so
// that the next pass reading this version finds it in memory.
func (r *Reader) Remember(s *corev1.Secret) {
	if s.ResourceVersion == "" || s.Data == nil {
		return
	}
	key := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
	e := &entry{key: key, resourceVersion: s.ResourceVersion, data: maps.Clone(s.Data), used: time.Now()}
	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.byKey[key]; ok {
		el.Value = e
		r.order.MoveToFront(el)
		return
	}
	r.byKey[key] = r.order.PushFront(e)
	for r.order.Len() > r.max {
		r.removeLocked(r.order.Back())
	}
	if r.sweep == nil {
		r.sweep = time.AfterFunc(r.ttl, r.dropUnused)
	}
}

// dropUnused drops what has not been used for ttl (from the back: the least recently used),
// and runs again while anything is kept.
func (r *Reader) dropUnused() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for last := r.order.Back(); last != nil && time.Since(last.Value.(*entry).used) >= r.ttl; last = r.order.Back() {
		r.removeLocked(last)
	}
	r.sweep = nil
	if last := r.order.Back(); last != nil {
		r.sweep = time.AfterFunc(r.ttl-time.Since(last.Value.(*entry).used), r.dropUnused)
	}
}

func (r *Reader) removeLocked(el *list.Element) {
	r.order.Remove(el)
	delete(r.byKey, el.Value.(*entry).key)
}

// lookup gives a copy of the data kept for key at resourceVersion (a copy: callers may change
// the map they are given).
func (r *Reader) lookup(key types.NamespacedName, resourceVersion string) (map[string][]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	el, ok := r.byKey[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*entry)
	if e.resourceVersion != resourceVersion {
		return nil, false
	}
	e.used = time.Now()
	r.order.MoveToFront(el)
	return maps.Clone(e.data), true
}

// Kept is how many Secrets' data is kept.
func (r *Reader) Kept() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.order.Len()
}

// Strip is the cache transform for the Secrets the manager owns: it drops their data (and
// managedFields), after observe, when given, has seen the whole Secret.
func Strip(observe func(*corev1.Secret)) func(any) (any, error) {
	return func(o any) (any, error) {
		s, ok := o.(*corev1.Secret)
		if !ok {
			return o, nil
		}
		if observe != nil {
			observe(s)
		}
		s.Data, s.StringData, s.ManagedFields = nil, nil, nil
		return s, nil
	}
}
