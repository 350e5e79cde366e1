package tenantcontrolplane_test

// Datastore migration end to end against real apiservers and two real etcds: the tenant's own
// kube-apiserver runs from its Deployment (the test plays the kubelet), the manager freezes
// it, streams the keys through the plugins, verifies, switches, lifts the freeze and
// deprovisions the source; a target that refuses the slice rolls back with nothing lost.

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	tcpcontroller "github.com/openhcp/kamaji/core/controllers/tenantcontrolplane"
	"github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/testenv"
	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// runTenant starts the TCP's kube-apiserver from its Deployment, routes the manager's tenant
// client to it, and plays the rollout; it returns a client of the tenant. The apiserver runs
// until owner's end.
func runTenant(t, owner *testing.T, name string) (client.Client, *testenv.TenantAPIServer) {
	t.Helper()
	api, err := testenv.StartTenantAPIServer(ctxT(t), env.Client, "default", name)
	if err != nil {
		t.Fatal(err)
	}
	owner.Cleanup(api.Stop)
	server := "https://" + getTCP(ctxT(t), t, name).Status.ControlPlaneEndpoint
	tenantURLs.Store(server, api.URL)
	tenants.Stop(types.NamespacedName{Namespace: "default", Name: name}) // reconnect to the new apiserver
	rollOut(t, name)
	return clientFor(t, tenantConfig(t, name, kubeconfig.KeySuperAdmin, api.URL)), api
}

func migrationOf(tcp *kamajiv1alpha1.TenantControlPlane) string {
	if m := tcp.Status.Storage.Migration; m != nil {
		return fmt.Sprintf("%s %s→%s: %s", m.Phase, m.Source, m.Target, m.Message)
	}
	return "none"
}

func TestMigration(t *testing.T) {
	a, b := testkit.StartEtcd(t), testkit.StartEtcd(t)
	rootA, rootB := a.Client(t), b.Client(t)
	for _, ds := range []*kamajiv1alpha1.DataStore{dataStoreFor("mig-a", a), dataStoreFor("mig-b", b)} {
		if err := env.Client.Create(ctxT(t), ds); err != nil {
			t.Fatal(err)
		}
	}
	const name, objects = "mover", 200
	tcp := newTCP(name, testenv.KubeVersion)
	tcp.Spec.DataStore = "mig-a"
	tcp.Spec.ControlPlane.Deployment.Replicas = ptr.To[int32](1)
	if err := env.Client.Create(ctxT(t), tcp); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, name, kamajiv1alpha1.ConditionDataStoreReady, metav1.ConditionTrue, tcpcontroller.ReasonDataStoreReady)
	eventually(t, "the Deployment", func(ctx context.Context) (bool, error) {
		return getTCP(ctx, t, name).Status.Kubernetes.Deployment.Name != "", nil
	})
	tc, oldAPI := runTenant(t, t, name)
	waitStatus(t, name, kamajiv1alpha1.VersionReady)
	ctx := ctxT(t)
	if err := tc.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}}); err != nil {
		t.Fatal(err)
	}
	for i := range objects {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: fmt.Sprintf("cm-%03d", i)}, Data: map[string]string{"i": fmt.Sprint(i), "pad": strings.Repeat("x", i)}}
		if err := tc.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
	}
	schema := getTCP(ctx, t, name).Spec.DataStoreSchema

	parent := t
	t.Run("etcd to etcd: frozen, copied, verified, switched, unfrozen, source deprovisioned", func(t *testing.T) {
		updateTCP(t, name, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.DataStore = "mig-b" })
		var switched *kamajiv1alpha1.TenantControlPlane
		eventually(t, "the switch to mig-b", func(ctx context.Context) (bool, error) {
			switched = getTCP(ctx, t, name)
			m := switched.Status.Storage.Migration
			return m != nil && m.Phase == kamajiv1alpha1.MigrationSwitching, fmt.Errorf("migration %s", migrationOf(switched))
		})
		if versionStatus(switched) != kamajiv1alpha1.VersionMigrating || switched.Status.Storage.DataStoreName != "mig-b" {
			t.Errorf("while switching: status %s, DataStore %s", versionStatus(switched), switched.Status.Storage.DataStoreName)
		}
		if m := switched.Status.Storage.Migration; m.FreezeStart == nil || !strings.Contains(m.Copied, "keys") {
			t.Errorf("migration status %+v", m)
		}
		// The old apiserver still serves: frozen, but nodes keep their leases.
		err := tc.Create(ctxT(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "during"}})
		if err == nil || !strings.Contains(err.Error(), tcpcontroller.Freeze.Message) {
			t.Errorf("a write during the freeze: want the freeze's refusal, got %v", err)
		}
		if err := tc.Create(ctxT(t), &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-node-lease", Name: "node-a"}}); err != nil {
			t.Errorf("a node lease during the freeze: %v", err)
		}
		// The freeze is a webhook the manager serves, called by the tenant apiserver.
		freeze := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		if err := tc.Get(ctxT(t), client.ObjectKey{Name: "kamaji-freeze"}, freeze); err != nil || len(freeze.Webhooks) != 1 ||
			!strings.HasPrefix(ptr.Deref(freeze.Webhooks[0].ClientConfig.URL, ""), env.WebhookURL+"/tenant/deny/") {
			t.Errorf("the ValidatingWebhookConfiguration kamaji-freeze during the freeze: %v %+v", err, freeze.Webhooks)
		}
		// The Deployment now points at mig-b: the new pods start there.
		eventually(t, "the Deployment to use mig-b", func(ctx context.Context) (bool, error) {
			args := strings.Join(getDeployment(ctx, t, name).Spec.Template.Spec.Containers[0].Args, " ")
			return strings.Contains(args, "--etcd-servers=https://"+b.Endpoints[0]), fmt.Errorf("args %s", args)
		})
		// The new replica starts on mig-b while the old one, on mig-a, still serves and still
		// receives the Service's traffic (the manager's tenant client is routed to it): the
		// freeze must be lifted on the new replica, reached by its pod IP, and only there.
		newAPI, err := testenv.StartTenantAPIServer(ctxT(t), env.Client, "default", name)
		if err != nil {
			t.Fatal(err)
		}
		parent.Cleanup(newAPI.Stop)
		pod := replicaPod(t, name, newAPI)
		defer func() { _ = env.Client.Delete(context.Background(), pod) }()
		rollOut(t, name)
		oldClient := tc
		tc = clientFor(t, tenantConfig(t, name, kubeconfig.KeySuperAdmin, newAPI.URL))
		// Play the Deployment controller for as long as it takes: any later template change is
		// rolled out too, as on a real cluster.
		var done *kamajiv1alpha1.TenantControlPlane
		eventually(t, "the migration to end", func(ctx context.Context) (bool, error) {
			done = getTCP(ctx, t, name)
			if c := condition(done, kamajiv1alpha1.ConditionDataStoreReady); c != nil && c.Reason == tcpcontroller.ReasonMigrated && done.Status.Storage.Migration == nil {
				return true, nil
			}
			if d := getDeployment(ctx, t, name); d.Status.ObservedGeneration != d.Generation {
				rollOut(t, name)
			}
			return false, fmt.Errorf("migration %s, conditions %+v", migrationOf(done), done.Status.Conditions)
		})
		if done.Status.Storage.Migration != nil || done.Status.Storage.DataStoreName != "mig-b" || done.Status.Storage.Driver != "etcd" {
			t.Errorf("after the migration: %+v", done.Status.Storage)
		}
		t.Log(condition(done, kamajiv1alpha1.ConditionDataStoreReady).Message)
		waitStatus(t, name, kamajiv1alpha1.VersionReady)

		var list corev1.ConfigMapList
		if err := tc.List(ctxT(t), &list, client.InNamespace("apps")); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, cm := range list.Items {
			if strings.HasPrefix(cm.Name, "cm-") {
				var i int
				fmt.Sscanf(cm.Name, "cm-%d", &i)
				if cm.Data["i"] != fmt.Sprint(i) || cm.Data["pad"] != strings.Repeat("x", i) {
					t.Errorf("%s changed: %v", cm.Name, cm.Data)
				}
				n++
			}
		}
		if n != objects {
			t.Errorf("%d ConfigMaps on the target, want %d", n, objects)
		}
		eventually(t, "writes accepted again", func(ctx context.Context) (bool, error) {
			err := tc.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "after"}})
			return err == nil, err
		})
		for _, obj := range []client.Object{&admissionregistrationv1.ValidatingWebhookConfiguration{}, &admissionregistrationv1.ValidatingAdmissionPolicy{}} {
			if err := tc.Get(ctxT(t), client.ObjectKey{Name: "kamaji-freeze"}, obj); !apierrors.IsNotFound(err) {
				t.Errorf("%T kamaji-freeze after the migration: %v", obj, err)
			}
		}
		// The replica left on mig-a kept the freeze: what it accepted would have been lost.
		if err := oldClient.Create(ctxT(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "lost"}}); err == nil {
			t.Error("the replica on the source DataStore accepted a write after the switch")
		}
		// From now on the Service leads to the new replica.
		server := "https://" + done.Status.ControlPlaneEndpoint
		tenantURLs.Store(server, newAPI.URL)
		tenants.Stop(types.NamespacedName{Namespace: "default", Name: name})
		oldAPI.Stop()
		if resp, err := rootA.Get(ctxT(t), "/"+schema+"/", clientv3WithPrefix()...); err != nil || resp.Count != 0 {
			t.Errorf("the source slice still holds keys: %v %v", resp.Count, err)
		}
		if _, err := rootA.UserGet(ctxT(t), done.Spec.DataStoreUsername); err == nil {
			t.Error("the source slice's user is still there")
		}
		if resp, err := rootB.Get(ctxT(t), "/"+schema+"/configmaps/apps/cm-007"); err != nil || resp.Count != 1 {
			t.Errorf("the target does not hold the data: %v", err)
		}
	})

	t.Run("a target that refuses the slice rolls back: unfrozen, nothing lost, the reason in a condition", func(t *testing.T) {
		// mig-a again, where the slice's names were claimed meanwhile by another owner.
		plugin, err := datastore.NewClient(sdk.ClientConfig{Path: etcdPlugin.Path, SHA256: etcdPlugin.SHA256})
		if err != nil {
			t.Fatal(err)
		}
		defer plugin.Close()
		cur := getTCP(ctxT(t), t, name)
		squatter := datastore.Tenant{Namespace: "other", Name: "squatter", Schema: cur.Spec.DataStoreSchema, Username: cur.Spec.DataStoreUsername, UID: "squatter-uid"}
		if _, err := plugin.EnsureTenant(ctxT(t), a.Config(), squatter); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = plugin.DeleteTenant(context.Background(), a.Config(), squatter) }()
		updateTCP(t, name, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.DataStore = "mig-a" })
		failed := waitCondition(t, name, kamajiv1alpha1.ConditionDataStoreReady, metav1.ConditionFalse, tcpcontroller.ReasonMigrationFailed)
		if msg := condition(failed, kamajiv1alpha1.ConditionDataStoreReady).Message; !strings.Contains(msg, "other/squatter") || !strings.Contains(msg, "runs on DataStore mig-b") {
			t.Errorf("the condition does not say why nor where the tenant runs: %s", msg)
		}
		if failed.Status.Storage.DataStoreName != "mig-b" || failed.Status.Storage.Migration.Phase != kamajiv1alpha1.MigrationFailed {
			t.Errorf("after the rollback: %+v", failed.Status.Storage)
		}
		if err := tc.Create(ctxT(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "after-rollback"}}); err != nil {
			t.Errorf("writes are still refused after the rollback: %v", err)
		}
		if err := tc.Get(ctxT(t), client.ObjectKey{Namespace: "apps", Name: "cm-042"}, &corev1.ConfigMap{}); err != nil {
			t.Errorf("data lost by the rollback: %v", err)
		}
		if resp, err := rootA.Get(ctxT(t), "kamaji/owners/schema/"+cur.Spec.DataStoreSchema); err != nil || resp.Count != 1 || !strings.Contains(string(resp.Kvs[0].Value), "squatter-uid") {
			t.Errorf("the rollback touched the other owner's slice: %v %v", resp, err)
		}
		// Going back to the DataStore the data is on ends the failed migration.
		updateTCP(t, name, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.DataStore = "mig-b" })
		back := waitCondition(t, name, kamajiv1alpha1.ConditionDataStoreReady, metav1.ConditionTrue, tcpcontroller.ReasonDataStoreReady)
		if back.Status.Storage.Migration != nil {
			t.Errorf("the failed migration is still recorded: %s", migrationOf(back))
		}
	})

	t.Run("a migration past its deadline rolls back: unfrozen, nothing lost, no target slice left", func(t *testing.T) {
		updateTCP(t, name, func(x *kamajiv1alpha1.TenantControlPlane) {
			x.Annotations = map[string]string{kamajiv1alpha1.MigrationTimeoutAnnotation: "1s"}
			x.Spec.DataStore = "mig-a"
		})
		// The deadline may pass before the switch or after it (the freeze is in force at once),
		// when the migration waits for the pods to run on the target: the Deployment controller
		// is played once the controller rolls back, until the rollback ends. Played as soon as
		// the deadline passed by the clock, it could complete the switch in a pass that began
		// before the deadline, and the migration would succeed (seen on an idle machine).
		var failed *kamajiv1alpha1.TenantControlPlane
		eventually(t, "the rollback to end", func(ctx context.Context) (bool, error) {
			failed = getTCP(ctx, t, name)
			m := failed.Status.Storage.Migration
			if m != nil && m.Phase == kamajiv1alpha1.MigrationFailed {
				return true, nil
			}
			if d := getDeployment(ctx, t, name); m != nil && m.Phase == kamajiv1alpha1.MigrationRollingBack && d.Status.ObservedGeneration != d.Generation {
				rollOut(t, name)
			}
			return false, fmt.Errorf("migration %s", migrationOf(failed))
		})
		if c := condition(failed, kamajiv1alpha1.ConditionDataStoreReady); c.Reason != tcpcontroller.ReasonMigrationFailed || !strings.Contains(c.Message, "not done within 1s") {
			t.Errorf("the condition does not say the deadline passed: %s %s", c.Reason, c.Message)
		}
		eventually(t, "writes accepted after the rollback", func(ctx context.Context) (bool, error) {
			err := tc.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "after-deadline"}})
			return err == nil, err
		})
		if err := tc.Get(ctxT(t), client.ObjectKey{Namespace: "apps", Name: "cm-199"}, &corev1.ConfigMap{}); err != nil {
			t.Errorf("data lost by the rollback: %v", err)
		}
		if resp, err := rootA.Get(ctxT(t), "/"+schema+"/", clientv3WithPrefix()...); err != nil || resp.Count != 0 {
			t.Errorf("the partial target slice was left: %v %v", resp.Count, err)
		}
		updateTCP(t, name, func(x *kamajiv1alpha1.TenantControlPlane) {
			delete(x.Annotations, kamajiv1alpha1.MigrationTimeoutAnnotation)
			x.Spec.DataStore = "mig-b"
		})
		waitCondition(t, name, kamajiv1alpha1.ConditionDataStoreReady, metav1.ConditionTrue, tcpcontroller.ReasonDataStoreReady)
	})

	t.Run("a target that is the same datastore under another name is refused, nothing touched", func(t *testing.T) {
		if err := env.Client.Create(ctxT(t), dataStoreFor("mig-b-alias", b)); err != nil {
			t.Fatal(err)
		}
		updateTCP(t, name, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.DataStore = "mig-b-alias" })
		failed := waitCondition(t, name, kamajiv1alpha1.ConditionDataStoreReady, metav1.ConditionFalse, tcpcontroller.ReasonMigrationFailed)
		if msg := condition(failed, kamajiv1alpha1.ConditionDataStoreReady).Message; !strings.Contains(msg, "share the endpoint") {
			t.Errorf("the condition does not say why: %s", msg)
		}
		if resp, err := rootB.Get(ctxT(t), "/"+schema+"/configmaps/apps/cm-007"); err != nil || resp.Count != 1 {
			t.Errorf("the tenant's data on mig-b was touched: %v", err)
		}
		updateTCP(t, name, func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.DataStore = "mig-b" })
		waitCondition(t, name, kamajiv1alpha1.ConditionDataStoreReady, metav1.ConditionTrue, tcpcontroller.ReasonDataStoreReady)
	})

	t.Run("a second change of spec.dataStore during a migration is refused", func(t *testing.T) {
		cur := getTCP(ctxT(t), t, name)
		cur.Status.Storage.Migration = &kamajiv1alpha1.StorageMigrationStatus{Source: "mig-b", Target: "mig-a", Phase: kamajiv1alpha1.MigrationCopying, StartTime: metav1.Now(), Deadline: metav1.Now()}
		// Shown to the webhook through the old object: pause the TCP so the controller does not act.
		updateTCP(t, name, func(x *kamajiv1alpha1.TenantControlPlane) {
			x.Annotations = map[string]string{kamajiv1alpha1.PausedAnnotation: ""}
		})
		// The paused TCP's last pass may still write its status: retried on conflict.
		setMigration := func(m *kamajiv1alpha1.StorageMigrationStatus) {
			t.Helper()
			if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				cur := getTCP(ctxT(t), t, name)
				cur.Status.Storage.Migration = m
				return env.Client.Status().Update(ctxT(t), cur)
			}); err != nil {
				t.Fatal(err)
			}
		}
		setMigration(&kamajiv1alpha1.StorageMigrationStatus{Source: "mig-b", Target: "mig-a", Phase: kamajiv1alpha1.MigrationCopying, StartTime: metav1.Now(), Deadline: metav1.Now()})
		cur = getTCP(ctxT(t), t, name)
		cur.Spec.DataStore = "mig-a"
		wantRejected(t, env.Client.Update(ctxT(t), cur), "spec.dataStore", "a migration from DataStore mig-b to mig-a is in progress")
		setMigration(nil)
		updateTCP(t, name, func(x *kamajiv1alpha1.TenantControlPlane) { delete(x.Annotations, kamajiv1alpha1.PausedAnnotation) })
	})

	deleteAndWait(t, getTCP(ctxT(t), t, name))
	if resp, err := rootB.Get(ctxT(t), "/"+schema+"/", clientv3WithPrefix()...); err != nil || resp.Count != 0 {
		t.Errorf("the tenant's keys outlived it on mig-b: %v %v", resp.Count, err)
	}
}

// replicaPod records a Ready control-plane pod of the Deployment's current template whose
// kube-apiserver is api (pod IP and port): what the kubelet would report for the new replica.
func replicaPod(t *testing.T, name string, api *testenv.TenantAPIServer) *corev1.Pod {
	t.Helper()
	u, err := url.Parse(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	d := getDeployment(ctxT(t), t, name)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", GenerateName: name + "-", Labels: d.Spec.Template.Labels, Annotations: d.Spec.Template.Annotations},
		Spec:       *d.Spec.Template.Spec.DeepCopy(),
	}
	for i := range pod.Spec.Containers {
		if c := &pod.Spec.Containers[i]; c.Name == "kube-apiserver" {
			c.Ports = []corev1.ContainerPort{{Name: "kube-apiserver", ContainerPort: int32(port), Protocol: corev1.ProtocolTCP}}
		}
	}
	if err := env.Client.Create(ctxT(t), pod); err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: u.Hostname(), PodIPs: []corev1.PodIP{{IP: u.Hostname()}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}},
	}
	if err := env.Client.Status().Update(ctxT(t), pod); err != nil {
		t.Fatal(err)
	}
	return pod
}
