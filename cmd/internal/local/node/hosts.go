package node

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// serviceCache keeps the admin cluster's Services for the pods' hosts files (writeHosts), and
// rewrites every running pod's file when they change.
type serviceCache struct {
	mu       sync.Mutex
	informer cache.SharedIndexInformer
}

// cachedServices are the Services of the informer once it has synced; ok is false before.
func (n *Node) cachedServices() ([]corev1.Service, bool) {
	n.svc.mu.Lock()
	inf := n.svc.informer
	n.svc.mu.Unlock()
	if inf == nil || !inf.HasSynced() {
		return nil, false
	}
	var out []corev1.Service
	for _, o := range inf.GetStore().List() {
		if s, ok := o.(*corev1.Service); ok {
			out = append(out, *s)
		}
	}
	return out, true
}

// watchServices starts the Service informer and, on every change (coalesced over half a
// second), rewrites the hosts file of each pod that has a sandbox.
func (n *Node) watchServices(ctx context.Context) {
	factory := informers.NewSharedInformerFactory(n.cs, 0)
	inf := factory.Core().V1().Services().Informer()
	kick := make(chan struct{}, 1)
	signal := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { signal() },
		UpdateFunc: func(any, any) { signal() },
		DeleteFunc: func(any) { signal() },
	}); err != nil {
		klog.ErrorS(err, "watching Services for the pods' hosts files")
		return
	}
	n.svc.mu.Lock()
	n.svc.informer = inf
	n.svc.mu.Unlock()
	factory.Start(ctx.Done())
	go func() {
		defer factory.Shutdown()
		for {
			select {
			case <-ctx.Done():
				return
			case <-kick:
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
			if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
				return
			}
			lines := n.serviceHosts(ctx)
			n.mu.Lock()
			runners := make([]*podRunner, 0, len(n.pods))
			for _, r := range n.pods {
				runners = append(runners, r)
			}
			n.mu.Unlock()
			for _, r := range runners {
				if _, err := os.Stat(filepath.Join(r.dir, "hosts")); err != nil {
					continue // not started yet, or gone: nothing to rewrite
				}
				if err := r.writeHostsWith(r.currentPod(), lines); err != nil {
					klog.ErrorS(err, "rewriting a pod's hosts file", "pod", klog.KObj(r.currentPod()))
				}
			}
		}
	}()
}
