// Package cachestore reads the manager's informer cache in place. A List from the cache copies
// every object of the kind into a new slice, even with client.UnsafeDisableDeepCopy (the
// structs themselves, about 7 MB for 1,000 TenantControlPlanes); a reader that only looks, at
// every pass or scrape, reads the informer's store instead.
package cachestore

import (
	"context"
	"errors"
	"fmt"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Store returns the informer store that holds obj's kind. Like a List, it waits for the
// informer's first sync once the cache has started (until ctx ends), and fails before it.
func Store(ctx context.Context, c cache.Informers, obj client.Object) (toolscache.Store, error) {
	inf, err := c.GetInformer(ctx, obj)
	if err != nil {
		return nil, err
	}
	if !inf.HasSynced() {
		return nil, errors.New("the cache has not synced")
	}
	s, ok := inf.(interface{ GetStore() toolscache.Store })
	if !ok {
		return nil, fmt.Errorf("the %T informer has no store", inf)
	}
	return s.GetStore(), nil
}

// Objects lists a store's objects of type T (the store holds nothing else). They are the
// cache's own: read them, never change them.
func Objects[T any](s toolscache.Store) []*T {
	items := s.List()
	out := make([]*T, 0, len(items))
	for _, o := range items {
		if t, ok := o.(*T); ok {
			out = append(out, t)
		}
	}
	return out
}

// List returns the cached objects of kind T, the cache's own (see Objects).
func List[T any, PT interface {
	*T
	client.Object
}](ctx context.Context, c cache.Informers) ([]*T, error) {
	var zero T
	s, err := Store(ctx, c, PT(&zero))
	if err != nil {
		return nil, err
	}
	return Objects[T](s), nil
}
