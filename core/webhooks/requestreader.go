package webhooks

import (
	"context"
	"errors"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// requestReader reads each DataStore once per admission request: several rules look at the
// same one (ruleDataStore, ruleDataStoreOverrides, ruleSlice), and every read is a round trip
// to the admin apiserver, which provisioning at scale waits on. It asks the manager's cache
// first, which holds every DataStore (the manager reconciles them), and the apiserver only when
// the cache has no such DataStore: one created a moment ago, not yet seen by the cache, is
// found all the same, and a missing one is reported only once the apiserver says so.
type requestReader struct {
	client.Reader
	cached     client.Reader // nil: every DataStore is read from the apiserver
	dataStores map[string]dataStoreRead
}

type dataStoreRead struct {
	ds  *kamajiv1alpha1.DataStore
	err error // nil or NotFound: other errors are not kept
}

func newRequestReader(r, cached client.Reader) *requestReader {
	return &requestReader{Reader: r, cached: cached, dataStores: map[string]dataStoreRead{}}
}

func (r *requestReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	ds, ok := obj.(*kamajiv1alpha1.DataStore)
	if !ok || len(opts) > 0 {
		return r.Reader.Get(ctx, key, obj, opts...)
	}
	if got, ok := r.dataStores[key.Name]; ok {
		if got.err != nil {
			return got.err
		}
		got.ds.DeepCopyInto(ds)
		return nil
	}
	err := errNotCached
	if r.cached != nil {
		err = r.cached.Get(ctx, key, ds)
	}
	if err != nil {
		err = r.Reader.Get(ctx, key, ds)
	}
	switch {
	case err == nil:
		r.dataStores[key.Name] = dataStoreRead{ds: ds.DeepCopy()}
	case apierrors.IsNotFound(err):
		r.dataStores[key.Name] = dataStoreRead{err: err}
	}
	return err
}

var errNotCached = errors.New("no cache")
