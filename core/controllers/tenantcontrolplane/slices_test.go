package tenantcontrolplane_test

// The tenant's datastore slice is its own: distinct names for generateName'd TCPs, squatters
// refused at admission and by the datastore's owner records, no silent DataStore switch,
// deletion from every DataStore touched (including after a failed first provisioning), the
// abandon annotation, overrides provisioned with the tenant's identity, usage reported.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	tcpcontroller "github.com/openhcp/kamaji/core/controllers/tenantcontrolplane"
	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit"
)

func wantRejected(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("admitted; want a rejection saying %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("rejection %q does not say %q", err, p)
		}
	}
}

func deleteAndWait(t *testing.T, tcp *kamajiv1alpha1.TenantControlPlane) {
	t.Helper()
	if err := env.Client.Delete(ctxT(t), tcp); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	gone(t, env.Client, "TCP "+tcp.Name, &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Namespace: tcp.Namespace, Name: tcp.Name}})
}

// waitDeletionBlocked waits for a deleted TCP to say, in DataStoreReady, that its deletion
// waits for the datastore and how to let go.
func waitDeletionBlocked(t *testing.T, name string) {
	t.Helper()
	eventually(t, name+"'s deletion to wait for its datastore", func(ctx context.Context) (bool, error) {
		tcp := getTCP(ctx, t, name)
		c := condition(tcp, kamajiv1alpha1.ConditionDataStoreReady)
		return tcp.DeletionTimestamp != nil && c != nil && c.Status == metav1.ConditionFalse &&
			strings.Contains(c.Message, kamajiv1alpha1.AbandonDataStoreSliceAnnotation), fmt.Errorf("condition %+v", c)
	})
}

func TestTenantSlices(t *testing.T) {
	etcd := testkit.StartEtcd(t)
	root := etcd.Client(t)
	other := testkit.StartEtcdSharingCA(t, etcd)
	otherRoot := other.Client(t)
	for _, ds := range []*kamajiv1alpha1.DataStore{dataStoreFor("slices", etcd), dataStoreFor("slices-events", other)} {
		if err := env.Client.Create(ctxT(t), ds); err != nil {
			t.Fatal(err)
		}
	}
	down := dataStoreFor("slices-down", etcd)
	down.Spec.Endpoints = []string{"127.0.0.1:1"} // nothing listens: the datastore is unreachable
	if err := env.Client.Create(ctxT(t), down); err != nil {
		t.Fatal(err)
	}
	onSlices := func(tcp *kamajiv1alpha1.TenantControlPlane) *kamajiv1alpha1.TenantControlPlane {
		tcp.Spec.DataStore = "slices"
		return tcp
	}

	var first *kamajiv1alpha1.TenantControlPlane
	t.Run("two TCPs of one generateName get distinct slices", func(t *testing.T) {
		var made []*kamajiv1alpha1.TenantControlPlane
		for range 2 {
			tcp := onSlices(newTCP("", "v1.37.2"))
			tcp.GenerateName = "gen-"
			if err := env.Client.Create(ctxT(t), tcp); err != nil {
				t.Fatal(err)
			}
			made = append(made, tcp)
		}
		a, b := made[0].Spec, made[1].Spec
		if a.DataStoreSchema == b.DataStoreSchema || a.DataStoreUsername == b.DataStoreUsername {
			t.Fatalf("%s and %s share a slice: %s/%s", made[0].Name, made[1].Name, a.DataStoreSchema, a.DataStoreUsername)
		}
		for _, tcp := range made {
			if !strings.HasPrefix(tcp.Spec.DataStoreSchema, "t_default_gen_") {
				t.Errorf("schema %q does not tell the tenant", tcp.Spec.DataStoreSchema)
			}
			got := waitCondition(t, tcp.Name, kamajiv1alpha1.ConditionDataStoreReady, metav1.ConditionTrue, tcpcontroller.ReasonDataStoreReady)
			if _, err := root.UserGet(ctxT(t), got.Spec.DataStoreUsername); err != nil {
				t.Errorf("%s: its etcd user: %v", tcp.Name, err)
			}
		}
		first = made[0]
		t.Cleanup(func() { deleteAndWait(t, made[1]) })
	})
	if first == nil {
		t.FailNow()
	}
	victimKey := "/" + first.Spec.DataStoreSchema + "/registry/configmaps/default/precious"
	if _, err := root.Put(ctxT(t), victimKey, "tenant data"); err != nil {
		t.Fatal(err)
	}
	victimSurvives := func(t *testing.T) {
		t.Helper()
		resp, err := root.Get(ctxT(t), victimKey)
		if err != nil || resp.Count != 1 || string(resp.Kvs[0].Value) != "tenant data" {
			t.Fatalf("the first tenant's data is damaged: %v %v", resp, err)
		}
		if _, err := root.UserGet(ctxT(t), first.Spec.DataStoreUsername); err != nil {
			t.Fatalf("the first tenant's etcd user is gone: %v", err)
		}
	}

	t.Run("a squatter naming another TCP's schema or user is refused, naming the owner", func(t *testing.T) {
		if err := env.Client.Create(ctxT(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "squatters"}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		owner := "default/" + first.Name
		sq := onSlices(newTCP("squatter", "v1.37.2"))
		sq.Namespace = "squatters"
		sq.Spec.DataStoreSchema, sq.Spec.DataStoreUsername = first.Spec.DataStoreSchema, "t_squatter_user"
		wantRejected(t, env.Client.Create(ctxT(t), sq.DeepCopy()), "spec.dataStoreSchema", "already used on DataStore slices by TenantControlPlane "+owner)
		sq.Spec.DataStoreSchema, sq.Spec.DataStoreUsername = "t_squatter_schema", first.Spec.DataStoreUsername
		wantRejected(t, env.Client.Create(ctxT(t), sq.DeepCopy()), "spec.dataStoreUsername", "already used on DataStore slices by TenantControlPlane "+owner)
		victimSurvives(t)
	})

	t.Run("names the driver refuses are refused at admission by its plugin", func(t *testing.T) {
		tcp := onSlices(newTCP("rooted", "v1.37.2"))
		tcp.Spec.DataStoreUsername = "root"
		wantRejected(t, env.Client.Create(ctxT(t), tcp), "spec.dataStoreUsername", "DataStore slices (driver etcd) refuses it")
	})

	t.Run("a slice the datastore records for another owner is refused and survives the squatter's deletion", func(t *testing.T) {
		// A TCP that raced past admission: the slice was claimed in the datastore by another
		// owner, which only the plugin's owner records can tell.
		plugin, err := datastore.NewClient(sdk.ClientConfig{Path: etcdPlugin.Path, SHA256: etcdPlugin.SHA256})
		if err != nil {
			t.Fatal(err)
		}
		defer plugin.Close()
		cfg := etcd.Config()
		victim := datastore.Tenant{Namespace: "elsewhere", Name: "victim", Schema: "t_raced", Username: "t_raced_user", UID: "victim-uid"}
		if _, err := plugin.EnsureTenant(ctxT(t), cfg, victim); err != nil {
			t.Fatal(err)
		}
		if _, err := root.Put(ctxT(t), "/t_raced/registry/secrets/default/s", "victim's secret"); err != nil {
			t.Fatal(err)
		}
		tcp := onSlices(newTCP("racer", "v1.37.2"))
		tcp.Spec.DataStoreSchema, tcp.Spec.DataStoreUsername = victim.Schema, victim.Username
		if err := env.Client.Create(ctxT(t), tcp); err != nil {
			t.Fatal(err)
		}
		got := waitCondition(t, "racer", kamajiv1alpha1.ConditionDataStoreReady, metav1.ConditionFalse, tcpcontroller.ReasonSliceOwned)
		if msg := condition(got, kamajiv1alpha1.ConditionDataStoreReady).Message; !strings.Contains(msg, "elsewhere/victim") {
			t.Errorf("the condition does not name the owner: %s", msg)
		}
		if got.Status.Storage.Setup.Schema != victim.Schema {
			t.Errorf("the slice was not recorded before provisioning: %+v", got.Status.Storage)
		}
		deleteAndWait(t, got)
		resp, err := root.Get(ctxT(t), "/t_raced/registry/secrets/default/s")
		if err != nil || resp.Count != 1 {
			t.Fatalf("the owner's data did not survive the squatter's deletion: %v %v", resp, err)
		}
		if _, err := root.UserGet(ctxT(t), victim.Username); err != nil {
			t.Fatalf("the owner's user did not survive: %v", err)
		}
		if err := plugin.DeleteTenant(ctxT(t), cfg, victim); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a TCP whose datastore never answered keeps its finalizer until it answers; the abandon annotation lets one go", func(t *testing.T) {
		// Both wait on the same unreachable datastore (each attempt takes the plugin call's
		// deadline): one is abandoned, the other deprovisioned once the datastore is back.
		var tcps []*kamajiv1alpha1.TenantControlPlane
		for _, name := range []string{"unreached", "abandoned"} {
			tcp := newTCP(name, "v1.37.2")
			tcp.Spec.DataStore = "slices-down"
			if err := env.Client.Create(ctxT(t), tcp); err != nil {
				t.Fatal(err)
			}
		}
		for _, name := range []string{"unreached", "abandoned"} {
			got := waitCondition(t, name, kamajiv1alpha1.ConditionDataStoreReady, metav1.ConditionFalse, "")
			if got.Status.Storage.DataStoreName != "slices-down" || got.Status.Storage.Setup.User != got.Spec.DataStoreUsername {
				t.Fatalf("the slice was not recorded before the first EnsureTenant: %+v", got.Status.Storage)
			}
			tcps = append(tcps, got)
		}
		unreached, abandoned := tcps[0], tcps[1]
		// What a first EnsureTenant that died half-way may leave: a role, no user.
		if _, err := root.RoleAdd(ctxT(t), unreached.Spec.DataStoreUsername); err != nil {
			t.Fatal(err)
		}
		for _, tcp := range tcps {
			if err := env.Client.Delete(ctxT(t), tcp); err != nil {
				t.Fatal(err)
			}
		}
		waitDeletionBlocked(t, "unreached")
		waitDeletionBlocked(t, "abandoned")

		updateTCP(t, "abandoned", func(x *kamajiv1alpha1.TenantControlPlane) {
			x.Annotations = map[string]string{kamajiv1alpha1.AbandonDataStoreSliceAnnotation: "true"}
		})
		gone(t, env.Client, "the abandoned TCP", &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "abandoned"}})
		eventually(t, "an Event on the DataStore recording the abandoned slice", func(ctx context.Context) (bool, error) {
			var list eventsv1.EventList
			if err := env.Client.List(ctx, &list); err != nil {
				return false, err
			}
			for _, e := range list.Items {
				if e.Regarding.Kind == "DataStore" && e.Regarding.Name == "slices-down" && e.Reason == tcpcontroller.ReasonSliceAbandoned &&
					strings.Contains(e.Note, abandoned.Spec.DataStoreSchema) && strings.Contains(e.Note, string(abandoned.UID)) {
					return true, nil
				}
			}
			return false, fmt.Errorf("%d events, none about the abandoned slice", len(list.Items))
		})
		if err := env.Client.Get(ctxT(t), client.ObjectKeyFromObject(unreached), &kamajiv1alpha1.TenantControlPlane{}); err != nil {
			t.Fatalf("the other TCP went while its datastore is unreachable: %v", err)
		}

		// The datastore comes back: the waiting TCP is deprovisioned, half-provisioned role included.
		setEndpoints(t, "slices-down", etcd.Endpoints)
		gone(t, env.Client, "the TCP", &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "unreached"}})
		roles, err := root.RoleList(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range roles.Roles {
			if r == unreached.Spec.DataStoreUsername {
				t.Errorf("the half-provisioned role %s was left behind", r)
			}
		}
	})

	t.Run("overrides are provisioned with the tenant's identity and deprovisioned with it", func(t *testing.T) {
		tcp := onSlices(newTCP("overridden", "v1.37.2"))
		tcp.Spec.DataStoreOverrides = []kamajiv1alpha1.DataStoreOverride{{Resource: "/events", DataStore: "slices-events"}}
		if err := env.Client.Create(ctxT(t), tcp); err != nil {
			t.Fatal(err)
		}
		got := waitCondition(t, "overridden", kamajiv1alpha1.ConditionDataStoreReady, metav1.ConditionTrue, tcpcontroller.ReasonDataStoreReady)
		if o := got.Status.Storage.Overrides; len(o) != 1 || o[0].DataStoreName != "slices-events" || o[0].User != got.Spec.DataStoreUsername {
			t.Fatalf("status.storage.overrides = %+v", o)
		}
		// The override slice is provisioned after the main one (whose DataStoreReady comes first).
		eventually(t, "the tenant's user on the override etcd", func(ctx context.Context) (bool, error) {
			u, err := otherRoot.UserGet(ctx, got.Spec.DataStoreUsername)
			if err != nil {
				return false, err
			}
			return len(u.Roles) == 1, fmt.Errorf("roles %v", u.Roles)
		})
		eventually(t, "the apiserver to use the override etcd for events", func(ctx context.Context) (bool, error) {
			dep := &appsv1.Deployment{}
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "overridden"}, dep); err != nil {
				return false, err
			}
			args := strings.Join(dep.Spec.Template.Spec.Containers[0].Args, " ")
			return strings.Contains(args, "--etcd-servers-overrides=/events#https://"+other.Endpoints[0]), fmt.Errorf("args: %s", args)
		})
		var rerr error
		for range 10 { // the controller writes the status meanwhile: retry on conflicts
			x := getTCP(ctxT(t), t, "overridden")
			x.Spec.DataStoreOverrides = nil
			if rerr = env.Client.Update(ctxT(t), x); !apierrors.IsConflict(rerr) {
				break
			}
		}
		wantRejected(t, rerr, "spec.dataStoreOverrides", "cannot change")
		if _, err := otherRoot.Put(ctxT(t), "/"+got.Spec.DataStoreSchema+"/events/default/e1", "event"); err != nil {
			t.Fatal(err)
		}
		deleteAndWait(t, got)
		if _, err := otherRoot.UserGet(ctxT(t), got.Spec.DataStoreUsername); err == nil {
			t.Error("the tenant's user is still on the override etcd")
		}
		if resp, err := otherRoot.Get(ctxT(t), "/"+got.Spec.DataStoreSchema+"/", clientv3WithPrefix()...); err != nil || resp.Count != 0 {
			t.Errorf("keys left on the override etcd: %v %v", resp, err)
		}
		victimSurvives(t)
	})

	t.Run("usage is reported per TCP and summed on the DataStore", func(t *testing.T) {
		// Past the usage interval, whatever ran before; back afterwards, or certificates issued
		// meanwhile would not be valid yet for the tests that follow.
		advanceClock(2 * time.Hour)
		t.Cleanup(func() { advanceClock(-2 * time.Hour) })
		// An annotation change wakes the DataStore's reconcile now rather than at its recheck. A
		// merge patch carries no resourceVersion, so the controller's own status writes meanwhile
		// cannot make it conflict.
		ds := &kamajiv1alpha1.DataStore{}
		ds.Name = "slices"
		patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"test/usage":"now"}}}`))
		if err := env.Client.Patch(ctxT(t), ds, patch); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the first tenant's usage in its status", func(ctx context.Context) (bool, error) {
			tcp := getTCP(ctx, t, first.Name)
			u := tcp.Status.Storage.Usage
			return u != nil && u.Keys != nil && *u.Keys >= 1 && u.Bytes != nil && *u.Bytes > 0, fmt.Errorf("usage %+v", u)
		})
		eventually(t, "the sum on the DataStore", func(ctx context.Context) (bool, error) {
			ds := &kamajiv1alpha1.DataStore{}
			if err := env.Client.Get(ctx, client.ObjectKey{Name: "slices"}, ds); err != nil {
				return false, err
			}
			u := ds.Status.Usage
			return u != nil && u.Tenants >= 1 && u.Keys != nil && *u.Keys >= 1, fmt.Errorf("usage %+v", u)
		})
	})

	deleteAndWait(t, first)
	if resp, err := root.Get(ctxT(t), victimKey); err != nil || resp.Count != 0 {
		t.Errorf("the first tenant's keys outlived it: %v %v", resp, err)
	}
}
