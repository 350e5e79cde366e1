package datastores

import (
	"context"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func inlineCA(rv, cert, key string) *kamajiv1alpha1.DataStore {
	return &kamajiv1alpha1.DataStore{
		ObjectMeta: metav1.ObjectMeta{Name: "ds", ResourceVersion: rv},
		Spec: kamajiv1alpha1.DataStoreSpec{Driver: "etcd", TLSConfig: &kamajiv1alpha1.TLSConfig{
			CertificateAuthority: kamajiv1alpha1.CertKeyPair{
				Certificate: kamajiv1alpha1.ContentRef{Content: []byte(cert)},
				PrivateKey:  &kamajiv1alpha1.ContentRef{Content: []byte(key)},
			},
		}},
	}
}

func TestOnCAChange(t *testing.T) {
	c := &Cache{}
	var got []string
	c.OnCAChange(func(name string) { got = append(got, name) })
	steps := []struct {
		ds     *kamajiv1alpha1.DataStore
		forget bool
		want   int
	}{
		{inlineCA("1", "ca-1", "key-1"), false, 0}, // first sight: nothing to compare with
		{inlineCA("2", "ca-1", "key-1"), false, 0}, // another change of the DataStore, same CA
		{inlineCA("3", "ca-2", "key-2"), false, 1}, // a new CA
		{inlineCA("3", "ca-2", "key-2"), true, 1},  // resolved again after Forget: same CA
		{inlineCA("4", "ca-2", "key-3"), true, 2},  // the key alone changed
	}
	for i, s := range steps {
		if s.forget {
			c.Forget("ds")
		}
		if _, err := c.Get(context.Background(), s.ds); err != nil {
			t.Fatal(err)
		}
		if len(got) != s.want {
			t.Fatalf("step %d: %d notifications, want %d", i, len(got), s.want)
		}
	}
	if !slices.Equal(got, []string{"ds", "ds"}) {
		t.Fatalf("notified %v", got)
	}
}
