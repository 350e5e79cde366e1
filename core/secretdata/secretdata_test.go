package secretdata_test

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openhcp/kamaji/core/secretdata"
	"github.com/openhcp/kamaji/core/testenv"
)

var plane *testenv.Plane

func TestMain(m *testing.M) { os.Exit(testenv.RunWithPlane(m, &plane)) }

// stripped is the Secret as the manager's cache holds it.
func stripped(t *testing.T, s *corev1.Secret) *corev1.Secret {
	t.Helper()
	o, err := secretdata.Strip(nil)(s.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	out := o.(*corev1.Secret)
	if out.Data != nil {
		t.Fatal("Strip kept the data")
	}
	return out
}

// counting counts the reads that reach the API.
type counting struct {
	client.Reader
	n int
}

func (c *counting) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.n++
	return c.Reader.Get(ctx, key, obj, opts...)
}

func TestFill(t *testing.T) {
	ctx := t.Context()
	c, err := client.New(plane.Config, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	// Two tenants' namespaces, each with a Secret of the same name and data of its own.
	secrets := map[string]*corev1.Secret{}
	for _, ns := range []string{"tenant-a", "tenant-b"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "shared-ca", Namespace: ns},
			Data:       map[string][]byte{"ca.crt": []byte("cert of " + ns), "ca.key": []byte("key of " + ns)},
		}
		if err := c.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		secrets[ns] = s
	}
	api := &counting{Reader: c}
	r := secretdata.New(api, 1, time.Hour)

	fill := func(ns string, s *corev1.Secret) *corev1.Secret {
		t.Helper()
		got := stripped(t, s)
		if err := r.Fill(ctx, got); err != nil {
			t.Fatalf("%s: %v", ns, err)
		}
		return got
	}
	wantData := func(got *corev1.Secret, ns string) {
		t.Helper()
		if string(got.Data["ca.crt"]) != "cert of "+ns || string(got.Data["ca.key"]) != "key of "+ns {
			t.Fatalf("%s got %q", ns, got.Data)
		}
	}

	wantData(fill("tenant-a", secrets["tenant-a"]), "tenant-a")
	if api.n != 1 {
		t.Fatalf("the first fill read the API %d times, want 1", api.n)
	}
	got := fill("tenant-a", secrets["tenant-a"])
	wantData(got, "tenant-a")
	if api.n != 1 {
		t.Fatalf("a second fill of the same version read the API (%d reads)", api.n)
	}
	got.Data["ca.crt"] = []byte("changed by a caller")
	wantData(fill("tenant-a", secrets["tenant-a"]), "tenant-a")

	// The other tenant's Secret of the same name is its own, and (one kept at most) takes the
	// place of the first.
	wantData(fill("tenant-b", secrets["tenant-b"]), "tenant-b")
	if r.Kept() != 1 || api.n != 2 {
		t.Fatalf("kept %d, %d API reads; want 1 and 2", r.Kept(), api.n)
	}
	wantData(fill("tenant-a", secrets["tenant-a"]), "tenant-a")
	if api.n != 3 {
		t.Fatalf("an evicted Secret was not read again: %d API reads", api.n)
	}

	// A newer version in the API than in the cache, not kept in memory: the Secret becomes
	// that version.
	wantData(fill("tenant-b", secrets["tenant-b"]), "tenant-b")
	old := secrets["tenant-a"]
	updated := old.DeepCopy()
	updated.Data["ca.crt"] = []byte("cert of tenant-a, renewed")
	if err := c.Update(ctx, updated); err != nil {
		t.Fatal(err)
	}
	got = fill("tenant-a", old)
	if got.ResourceVersion != updated.ResourceVersion || string(got.Data["ca.crt"]) != "cert of tenant-a, renewed" {
		t.Fatalf("a stale cached Secret got version %s with %q, want %s", got.ResourceVersion, got.Data["ca.crt"], updated.ResourceVersion)
	}

	// What a write returned is remembered: no read.
	n := api.n
	updated.Data["ca.crt"] = []byte("cert of tenant-a, written")
	if err := c.Update(ctx, updated); err != nil {
		t.Fatal(err)
	}
	r.Remember(updated)
	if got := fill("tenant-a", updated); string(got.Data["ca.crt"]) != "cert of tenant-a, written" || api.n != n {
		t.Fatalf("after Remember: %q with %d more API reads", got.Data["ca.crt"], api.n-n)
	}

	// A Secret deleted since the cache saw it: NotFound, and the other tenant's is untouched.
	if err := c.Delete(ctx, updated); err != nil {
		t.Fatal(err)
	}
	wantData(fill("tenant-b", secrets["tenant-b"]), "tenant-b") // tenant-a's data is no longer kept
	if err := r.Fill(ctx, stripped(t, updated)); !apierrors.IsNotFound(err) {
		t.Fatalf("a deleted Secret: %v, want NotFound", err)
	}

	// A Secret that has its data (read from the API) is only remembered.
	n = api.n
	b := secrets["tenant-b"].DeepCopy()
	if err := r.Fill(ctx, b); err != nil || api.n != n {
		t.Fatalf("filling a Secret with data: %v, %d API reads", err, api.n-n)
	}
}

// What is not used for the ttl is dropped, and read from the API when needed again.
func TestUnusedDataIsDropped(t *testing.T) {
	ctx := t.Context()
	c, err := client.New(plane.Config, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "resting", Namespace: "default"},
		Data:       map[string][]byte{"tls.key": []byte("key")},
	}
	if err := c.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	api := &counting{Reader: c}
	r := secretdata.New(api, 10, 2*time.Second)
	r.Remember(s)
	if r.Kept() != 1 {
		t.Fatalf("kept %d, want 1", r.Kept())
	}
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return r.Kept() == 0, nil
	}); err != nil {
		t.Fatalf("still kept %d after the ttl: %v", r.Kept(), err)
	}
	got := stripped(t, s)
	if err := r.Fill(ctx, got); err != nil || string(got.Data["tls.key"]) != "key" || api.n != 1 {
		t.Fatalf("after the ttl: %v, data %q, %d API reads (want 1)", err, got.Data, api.n)
	}
}
