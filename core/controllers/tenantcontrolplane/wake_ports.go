package tenantcontrolplane

import (
	"context"
	"fmt"
	"sync"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openhcp/kamaji/core/sleep"
)

// Wake ports: each sleeping TCP has its own port on the manager pods (the destination address
// of a connection is a manager pod's, whichever TCP it was meant for).
const (
	DefaultWakePortBase  int32 = 20000
	DefaultWakePortCount int32 = 10000
)

// wakePorts hands out the wake ports. The wake EndpointSlices record them; the allocations
// of this process are also kept in memory, since the cache may not show a slice just applied
// when two TCPs fall asleep at once.
type wakePorts struct {
	mu    sync.Mutex
	byKey map[types.NamespacedName]int32
}

// get returns key's port: the one its slice (or an earlier call) holds, else the lowest free.
func (w *wakePorts) get(ctx context.Context, c client.Reader, key types.NamespacedName, base, count int32) (int32, error) {
	var list discoveryv1.EndpointSliceList
	if err := c.List(ctx, &list, client.HasLabels{sleep.WakeLabel}); err != nil {
		return 0, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byKey == nil {
		w.byKey = map[types.NamespacedName]int32{}
	}
	used := map[int32]types.NamespacedName{}
	for k, port := range w.byKey {
		used[port] = k
	}
	for _, s := range list.Items {
		if len(s.Ports) != 1 || s.Ports[0].Port == nil {
			continue
		}
		k := types.NamespacedName{Namespace: s.Namespace, Name: s.Labels[sleep.WakeLabel]}
		if k == key {
			w.byKey[key] = *s.Ports[0].Port
			return *s.Ports[0].Port, nil
		}
		used[*s.Ports[0].Port] = k
	}
	if port, ok := w.byKey[key]; ok {
		return port, nil
	}
	for port := base; port < base+count; port++ {
		if _, taken := used[port]; !taken {
			w.byKey[key] = port
			return port, nil
		}
	}
	return 0, fmt.Errorf("all %d wake ports from %d are taken by sleeping TenantControlPlanes", count, base)
}

// release frees key's port once its slice is gone.
func (w *wakePorts) release(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.byKey, key)
}
