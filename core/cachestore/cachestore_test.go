package cachestore_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/openhcp/kamaji/core/cachestore"
)

// Objects hands out the store's own objects, not copies, and only those of the asked type.
func TestObjectsAreTheStoresOwn(t *testing.T) {
	s := toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
	a := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "a"}}
	b := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "b"}}
	for _, o := range []any{a, b, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "c"}}} {
		if err := s.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	got := cachestore.Objects[corev1.Secret](s)
	if len(got) != 2 {
		t.Fatalf("got %d Secrets, want 2", len(got))
	}
	for _, o := range got {
		if o != a && o != b {
			t.Errorf("%s/%s is a copy, not the store's object", o.Namespace, o.Name)
		}
	}
}
