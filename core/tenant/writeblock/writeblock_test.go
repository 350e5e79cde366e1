package writeblock_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openhcp/kamaji/core/manager"
	"github.com/openhcp/kamaji/core/tenant/writeblock"
	"github.com/openhcp/kamaji/core/testenv"
)

// The "tenant" is a test plane's real kube-apiserver: the policy is enforced by it.
var c client.Client

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	plane, err := testenv.Start(ctx, testenv.Options{})
	cancel()
	if err == nil {
		c, err = client.New(plane.Config, client.Options{Scheme: manager.Scheme()})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "test plane:", err)
		if plane != nil {
			plane.Stop()
		}
		os.Exit(1)
	}
	code := m.Run()
	plane.Stop()
	os.Exit(code)
}

var freeze = writeblock.Block{
	Name:       "kamaji-freeze",
	Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete},
	Exempt:     []string{"kube-system", "kube-node-lease"},
	Message:    "writes are frozen while the tenant's data moves to another datastore",
}

func TestBlockRefusesWritesOutsideTheExemptNamespaces(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, ns := range []string{"kube-node-lease", "apps"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); testenv.IgnoreAlreadyExists(err) != nil {
			t.Fatal(err)
		}
	}
	before := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "before"}, Data: map[string]string{"a": "1"}}
	if err := c.Create(ctx, before); err != nil {
		t.Fatal(err)
	}
	if ok, err := freeze.Enforced(ctx, c, "default"); err != nil || ok {
		t.Fatalf("enforced before it is applied: %v %v", ok, err)
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		return freeze.Apply(ctx, c, "kamaji-test", "default")
	})
	if err != nil {
		t.Fatalf("the block is not enforced: %v", err)
	}

	refused := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), freeze.Message) {
			t.Errorf("%s: want the block's refusal, got %v", what, err)
		}
	}
	refused("create in a namespace", c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "new"}}))
	before.Data["a"] = "2"
	refused("update", c.Update(ctx, before))
	refused("delete", c.Delete(ctx, before))
	refused("cluster-scoped create", c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "frozen-out"}}))
	// Reads pass; nodes keep their leases; kube-system stays writable.
	if err := c.Get(ctx, client.ObjectKeyFromObject(before), &corev1.ConfigMap{}); err != nil {
		t.Errorf("a read was refused: %v", err)
	}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-node-lease", Name: "node-1"}}
	if err := c.Create(ctx, lease); err != nil {
		t.Errorf("a node lease was refused: %v", err)
	}
	if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "allowed"}}); err != nil {
		t.Errorf("kube-system was refused: %v", err)
	}

	if err := freeze.Remove(ctx, c); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		ok, err := freeze.Enforced(ctx, c, "default")
		return !ok, err
	})
	if err != nil {
		t.Fatalf("still enforced after removal: %v", err)
	}
	if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "after"}}); err != nil {
		t.Errorf("a write after the block was lifted: %v", err)
	}
	if err := freeze.Remove(ctx, c); err != nil {
		t.Errorf("removing an absent block: %v", err)
	}
}
