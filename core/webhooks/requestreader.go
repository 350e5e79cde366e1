package webhooks

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// requestReader reads each DataStore once per admission request: several rules look at the
// same one (ruleDataStore, ruleDataStoreOverrides, ruleSlice), and every read is a round trip
// to the admin apiserver, which provisioning at scale waits on. Reads stay live (no cache
// across requests): a DataStore created a moment ago is seen.
type requestReader struct {
	client.Reader
	dataStores map[string]dataStoreRead
}

type dataStoreRead struct {
	ds  *kamajiv1alpha1.DataStore
	err error // nil or NotFound: other errors are not kept
}

func newRequestReader(r client.Reader) *requestReader {
	return &requestReader{Reader: r, dataStores: map[string]dataStoreRead{}}
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
	err := r.Reader.Get(ctx, key, ds)
	switch {
	case err == nil:
		r.dataStores[key.Name] = dataStoreRead{ds: ds.DeepCopy()}
	case apierrors.IsNotFound(err):
		r.dataStores[key.Name] = dataStoreRead{err: err}
	}
	return err
}
