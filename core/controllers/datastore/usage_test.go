package datastore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/testenv/testdatastore"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// With a pass limited to one tenant (TestMain), the usage of three tenants is counted over
// several passes: each TCP gets its own figures, the DataStore their sum over all three, and
// counting leaves every tenant's keys as they were. A sleeping tenant is counted less often.
func TestUsageCountedOverSeveralPasses(t *testing.T) {
	t.Parallel()
	e := testkit.StartEtcd(t)
	ds := testdatastore.Etcd("usage", e)
	if err := env.Client.Create(ctxT(t), ds); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), ds) })
	root := e.Client(t)

	names := []string{"usage-a", "usage-b", "usage-c"}
	prefixes := map[string]string{}
	for _, name := range names {
		tcp := tcpOn(name, "usage")
		if err := env.Client.Create(ctxT(t), tcp); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), tcp) })
	}
	// Tenant i stores i+1 keys of 10 bytes.
	for i, name := range names {
		var schema string
		eventually(t, name+"'s slice", func(ctx context.Context) (bool, error) {
			tcp := &kamajiv1alpha1.TenantControlPlane{}
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, tcp); err != nil {
				return false, err
			}
			schema = tcp.Status.Storage.Setup.Schema
			return schema != "", fmt.Errorf("no schema in its status yet")
		})
		prefixes[name] = "/" + schema + "/registry/configmaps/default/"
		for j := range i + 1 {
			if _, err := root.Put(ctxT(t), fmt.Sprintf("%sk%d", prefixes[name], j), "0123456789"); err != nil {
				t.Fatal(err)
			}
		}
	}

	for i, name := range names {
		keys := int64(i + 1)
		eventually(t, fmt.Sprintf("%s's usage: %d keys", name, keys), func(ctx context.Context) (bool, error) {
			tcp := &kamajiv1alpha1.TenantControlPlane{}
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, tcp); err != nil {
				return false, err
			}
			u := tcp.Status.Storage.Usage
			return u != nil && u.Keys != nil && *u.Keys == keys && u.Bytes != nil && *u.Bytes == keys*int64(len(prefixes[name])+2+10),
				fmt.Errorf("usage %s", usageString(u))
		})
	}
	eventually(t, "the DataStore's sum over the three", func(ctx context.Context) (bool, error) {
		got := &kamajiv1alpha1.DataStore{}
		if err := env.Client.Get(ctx, client.ObjectKey{Name: "usage"}, got); err != nil {
			return false, err
		}
		u := got.Status.Usage
		return u != nil && u.Tenants == 3 && u.Keys != nil && *u.Keys == 6, fmt.Errorf("usage %+v", u)
	})
	for i, name := range names {
		resp, err := root.Get(ctxT(t), prefixes[name], clientv3.WithPrefix())
		if err != nil || resp.Count != int64(i+1) {
			t.Errorf("%s's keys after counting: %v %v, want %d", name, resp, err, i+1)
		}
	}

	// Scaled to zero and counted while asleep, usage-c is counted at the asleep interval (an
	// hour), not every few seconds: a key added now shows only once it wakes. Two counts of
	// usage-a after the key, in turn with the others, leave time for a count of usage-c at the
	// usual interval.
	get := func(ctx context.Context, name string) (*kamajiv1alpha1.TenantControlPlane, error) {
		tcp := &kamajiv1alpha1.TenantControlPlane{}
		return tcp, env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, tcp)
	}
	scale := func(name string, replicas int32) {
		t.Helper()
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			tcp, err := get(ctxT(t), name)
			if err != nil {
				return err
			}
			tcp.Spec.ControlPlane.Deployment.Replicas = ptr.To(replicas)
			return env.Client.Update(ctxT(t), tcp)
		}); err != nil {
			t.Fatal(err)
		}
	}
	scale("usage-c", 0)
	// Played here, the Deployment controller: no replica is left.
	eventually(t, "usage-c's Deployment scaled to zero, its status written", func(ctx context.Context) (bool, error) {
		d := &appsv1.Deployment{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "usage-c"}, d); err != nil {
			return false, err
		}
		if ptr.Deref(d.Spec.Replicas, 1) != 0 {
			return false, fmt.Errorf("replicas %v", d.Spec.Replicas)
		}
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation}
		return true, env.Client.Status().Update(ctx, d)
	})
	var seenAsleep time.Time
	eventually(t, "usage-c asleep", func(ctx context.Context) (bool, error) {
		tcp, err := get(ctx, "usage-c")
		if err != nil {
			return false, err
		}
		st := tcp.Status.Kubernetes.Version.Status
		seenAsleep = time.Now()
		return st != nil && *st == kamajiv1alpha1.VersionSleeping, fmt.Errorf("status %v", st)
	})
	countsAfter := func(name string, after time.Time, n int) {
		t.Helper()
		seen := map[time.Time]bool{}
		eventually(t, fmt.Sprintf("%d counts of %s after %s", n, name, after.Format(time.RFC3339)), func(ctx context.Context) (bool, error) {
			tcp, err := get(ctx, name)
			if err != nil {
				return false, err
			}
			if u := tcp.Status.Storage.Usage; u != nil && u.LastUpdate.Time.After(after) {
				seen[u.LastUpdate.Time] = true
			}
			return len(seen) >= n, fmt.Errorf("%d", len(seen))
		})
	}
	lastCount := func(name string) time.Time {
		t.Helper()
		tcp, err := get(ctxT(t), name)
		if err != nil || tcp.Status.Storage.Usage == nil {
			t.Fatalf("%s's usage: %v", name, err)
		}
		return tcp.Status.Storage.Usage.LastUpdate.Time
	}
	// A count of usage-c asleep; then two of usage-a, in which a count of usage-c that still
	// read it awake (the manager's cache a moment behind) would be followed by its last one.
	countsAfter("usage-c", seenAsleep.Truncate(time.Second), 1)
	countsAfter("usage-a", lastCount("usage-c"), 2)
	settled := lastCount("usage-c")
	added := time.Now().Truncate(time.Second)
	for _, name := range []string{"usage-a", "usage-c"} {
		if _, err := root.Put(ctxT(t), prefixes[name]+"added", "0123456789"); err != nil {
			t.Fatal(err)
		}
	}
	countsAfter("usage-a", added, 2)
	if tcp, err := get(ctxT(t), "usage-c"); err != nil || !tcp.Status.Storage.Usage.LastUpdate.Time.Equal(settled) || *tcp.Status.Storage.Usage.Keys != 3 {
		t.Errorf("usage-c asleep was counted again: %v %s, want its 3 keys counted at %s", err, usageString(tcp.Status.Storage.Usage), settled)
	}
	scale("usage-c", 1)
	eventually(t, "usage-c awake, counted with its added key", func(ctx context.Context) (bool, error) {
		tcp, err := get(ctx, "usage-c")
		if err != nil {
			return false, err
		}
		u := tcp.Status.Storage.Usage
		return u != nil && u.Keys != nil && *u.Keys == 4, fmt.Errorf("usage %s", usageString(u))
	})
}

func usageString(u *kamajiv1alpha1.StorageUsage) string {
	if u == nil {
		return "none"
	}
	s := "keys "
	if u.Keys != nil {
		s += fmt.Sprint(*u.Keys)
	}
	s += ", bytes "
	if u.Bytes != nil {
		s += fmt.Sprint(*u.Bytes)
	}
	return s + " at " + u.LastUpdate.String()
}
