package tenant

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// Selector selects what the core applies in a tenant (kubeadm phases and addons): its watches
// and its pruning never see anything else.
var Selector = labels.SelectorFromSet(labels.Set{kamajiv1alpha1.ManagedByLabel: kamajiv1alpha1.ManagedByValue})

// ErrStopped: the tenant's client was stopped (the TCP sleeps or is gone).
var ErrStopped = errors.New("the tenant client is stopped")

// watch is one label-selected, metadata-only informer.
type watch struct {
	informer cache.SharedIndexInformer
}

// Watch makes sure the objects of kind gvk that the core applied in the tenant are watched
// (selected by Selector, metadata only: the watch holds no Secret data nor pod specs), and waits
// until the watch has listed them. A change that may be a drift (an object deleted, its spec or
// labels changed, its customisation annotation changed) counts as an event and wakes the
// tenant's TenantControlPlane.
func (c *Client) Watch(ctx context.Context, gvk schema.GroupVersionKind) error {
	mapping, err := c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("%s: %w", gvk.Kind, err)
	}
	gvr := mapping.Resource
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return ErrStopped
	}
	w := c.watches[gvr]
	if w == nil {
		inf := metadatainformer.NewFilteredMetadataInformer(c.meta, gvr, metav1.NamespaceAll, 0, cache.Indexers{},
			func(o *metav1.ListOptions) { o.LabelSelector = Selector.String() }).Informer()
		if _, err := inf.AddEventHandler(handler{c}); err != nil {
			c.mu.Unlock()
			return err
		}
		_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
			c.log.V(1).Info("tenant watch interrupted; retrying", "resource", gvr.String(), "error", err.Error())
		})
		w = &watch{informer: inf}
		c.watches[gvr] = w
		go inf.Run(c.stopCh)
	}
	stop := c.stopCh
	c.mu.Unlock()
	return waitSynced(ctx, stop, w.informer)
}

func waitSynced(ctx context.Context, stop <-chan struct{}, inf cache.SharedIndexInformer) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !inf.HasSynced() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the tenant watch to list: %w", ctx.Err())
		case <-stop:
			return ErrStopped
		case <-t.C:
		}
	}
	return nil
}

// handler turns watch events into tenant events. The initial list is not an event; an update
// counts only when it may be a drift, so the status updates of the tenant's controllers (a
// Deployment's replicas, a DaemonSet's rollout) do not wake the core.
type handler struct{ c *Client }

func (h handler) OnAdd(obj any, initial bool) {
	if !initial {
		h.c.event(obj)
	}
}

func (h handler) OnUpdate(oldObj, newObj any) {
	o, ok1 := oldObj.(*metav1.PartialObjectMetadata)
	n, ok2 := newObj.(*metav1.PartialObjectMetadata)
	if !ok1 || !ok2 || Relevant(o, n) {
		h.c.event(oldObj)
		if ok1 && ok2 && UnitOf(o.Labels) != UnitOf(n.Labels) {
			h.c.event(newObj)
		}
	}
}

func (h handler) OnDelete(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	h.c.event(obj)
}

func (c *Client) event(obj any) {
	unit := "other"
	if m, ok := obj.(metav1.Object); ok {
		unit = UnitOf(m.GetLabels())
	}
	c.mu.Lock()
	c.events[unit]++
	c.mu.Unlock()
	if c.changed != nil {
		c.changed()
	}
}

// Cached is the watched metadata of an object, when a watch of its kind runs and holds it.
func (c *Client) Cached(gvk schema.GroupVersionKind, namespace, name string) (*metav1.PartialObjectMetadata, bool) {
	mapping, err := c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, false
	}
	c.mu.Lock()
	w := c.watches[mapping.Resource]
	c.mu.Unlock()
	if w == nil {
		return nil, false
	}
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	obj, ok, err := w.informer.GetStore().GetByKey(key)
	if err != nil || !ok {
		return nil, false
	}
	m, ok := obj.(*metav1.PartialObjectMetadata)
	return m, ok
}

// Relevant tells whether an update may have undone what the core applied: the generation moved
// (a spec change), the labels changed, the customisation annotation changed or the object is
// being deleted. Objects without a generation (ConfigMaps, RBAC, ServiceAccounts) have no
// status either, so any change of theirs counts.
func Relevant(o, n *metav1.PartialObjectMetadata) bool {
	switch {
	case o.ResourceVersion == n.ResourceVersion:
		return false // a resync
	case n.Generation == 0:
		return true
	case o.Generation != n.Generation:
		return true
	case !maps.Equal(o.Labels, n.Labels):
		return true
	case o.Annotations[kamajiv1alpha1.AddonIgnoreAnnotation] != n.Annotations[kamajiv1alpha1.AddonIgnoreAnnotation]:
		return true
	case o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero():
		return true
	}
	return false
}
