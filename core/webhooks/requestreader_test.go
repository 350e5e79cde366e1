package webhooks

import (
	"context"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// countingReader counts the Gets that reach the reader below.
type countingReader struct {
	client.Reader
	gets int
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.gets++
	return c.Reader.Get(ctx, key, obj, opts...)
}

func TestRequestReaderReadsEachDataStoreOnce(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := kamajiv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ds := &kamajiv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: kamajiv1alpha1.DataStoreSpec{Driver: kamajiv1alpha1.DriverEtcd}}
	below := &countingReader{Reader: fake.NewClientBuilder().WithScheme(scheme).WithObjects(ds).Build()}
	r := newRequestReader(below, nil)
	ctx := context.Background()
	for range 3 {
		got := &kamajiv1alpha1.DataStore{}
		if err := r.Get(ctx, client.ObjectKey{Name: "default"}, got); err != nil || got.Spec.Driver != kamajiv1alpha1.DriverEtcd {
			t.Fatalf("got %+v, %v", got.Spec, err)
		}
		got.Spec.Driver = "changed by a rule" // a rule's copy is its own
	}
	for range 2 {
		if err := r.Get(ctx, client.ObjectKey{Name: "missing"}, &kamajiv1alpha1.DataStore{}); !apierrors.IsNotFound(err) {
			t.Fatalf("missing: %v", err)
		}
	}
	if below.gets != 2 {
		t.Errorf("%d reads reached the apiserver, want 2 (one per DataStore)", below.gets)
	}
	// Another request reads anew.
	if err := newRequestReader(below, nil).Get(ctx, client.ObjectKey{Name: "default"}, &kamajiv1alpha1.DataStore{}); err != nil || below.gets != 3 {
		t.Errorf("a new request: %v, %d reads", err, below.gets)
	}
	// Other kinds are not kept.
	tcp := &kamajiv1alpha1.TenantControlPlane{}
	for range 2 {
		_ = r.Get(ctx, client.ObjectKey{Namespace: "default", Name: "x"}, tcp)
	}
	if below.gets != 5 {
		t.Errorf("TCP reads: %d reads in all, want 5", below.gets)
	}
}

func TestRequestReaderAsksTheCacheFirst(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := kamajiv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	known := &kamajiv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Name: "known"}, Spec: kamajiv1alpha1.DataStoreSpec{Driver: kamajiv1alpha1.DriverEtcd}}
	fresh := &kamajiv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Name: "fresh"}, Spec: kamajiv1alpha1.DataStoreSpec{Driver: "mysql"}}
	cached := &countingReader{Reader: fake.NewClientBuilder().WithScheme(scheme).WithObjects(known).Build()}
	live := &countingReader{Reader: fake.NewClientBuilder().WithScheme(scheme).WithObjects(known, fresh).Build()}
	r := newRequestReader(live, cached)
	ctx := context.Background()

	got := &kamajiv1alpha1.DataStore{}
	if err := r.Get(ctx, client.ObjectKey{Name: "known"}, got); err != nil || got.Spec.Driver != kamajiv1alpha1.DriverEtcd {
		t.Fatalf("known: %+v, %v", got.Spec, err)
	}
	if live.gets != 0 {
		t.Errorf("a DataStore the cache holds was read from the apiserver (%d reads)", live.gets)
	}
	// Created a moment ago: the cache has not seen it, the apiserver has.
	if err := r.Get(ctx, client.ObjectKey{Name: "fresh"}, got); err != nil || got.Spec.Driver != "mysql" {
		t.Fatalf("fresh: %+v, %v", got.Spec, err)
	}
	if err := r.Get(ctx, client.ObjectKey{Name: "missing"}, got); !apierrors.IsNotFound(err) {
		t.Fatalf("missing: %v, want NotFound", err)
	}
	if live.gets != 2 {
		t.Errorf("%d reads reached the apiserver, want 2 (the DataStores the cache lacks)", live.gets)
	}
}
