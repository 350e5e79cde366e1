package tenantcontrolplane

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// secretWrites remembers, per TCP and Secret, the resourceVersion of the manager's last write
// of the Secret until the cache shows it. A pass that reads a Secret the previous pass wrote
// must not see it stale: an old certificate would be reissued a second time, and the pods'
// checksum, computed from what was read, would go back to the old one and forth again.
type secretWrites struct {
	mu sync.Mutex
	m  map[types.NamespacedName]map[string]string
}

func (w *secretWrites) expect(tcp types.NamespacedName, secret, resourceVersion string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[types.NamespacedName]map[string]string{}
	}
	if w.m[tcp] == nil {
		w.m[tcp] = map[string]string{}
	}
	w.m[tcp][secret] = resourceVersion
}

// expected gives the resourceVersion the cache has yet to show, if any.
func (w *secretWrites) expected(tcp types.NamespacedName, secret string) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	rv, ok := w.m[tcp][secret]
	return rv, ok
}

// done drops the expectation: the cache showed the write, or the Secret changed since.
func (w *secretWrites) done(tcp types.NamespacedName, secret string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m[tcp], secret)
	if len(w.m[tcp]) == 0 {
		delete(w.m, tcp)
	}
}

// forget drops a deleted TCP's expectations.
func (w *secretWrites) forget(tcp types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, tcp)
}
