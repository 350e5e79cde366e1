package tenantcontrolplane_test

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	tcpcontroller "github.com/openhcp/kamaji/core/controllers/tenantcontrolplane"
	"github.com/openhcp/kamaji/core/datastores"
	"github.com/openhcp/kamaji/core/metrics/metricstest"
	"github.com/openhcp/kamaji/core/pluginhost"
	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/core/tenantpki"
	"github.com/openhcp/kamaji/sdk/testkit"
)

func scrapeManager(t *testing.T) metricstest.Families {
	t.Helper()
	f, err := metricstest.Scrape(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// eventsAbout lists the Events regarding the object of that kind and name, as kubectl would.
func eventsAbout(ctx context.Context, kind, namespace, name string) ([]eventsv1.Event, error) {
	var list eventsv1.EventList
	if err := env.Client.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == kind && e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b eventsv1.Event) int { return a.EventTime.Compare(b.EventTime.Time) })
	return out, nil
}

func describe(evs []eventsv1.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "\n  %s %s/%s: %s", e.Type, e.Action, e.Reason, e.Note)
	}
	return b.String()
}

// waitEvent waits for an Event with that type, action and reason, and returns the Events so far.
func waitEvent(t *testing.T, kind, namespace, name, eventType, action, reason string) []eventsv1.Event {
	t.Helper()
	var evs []eventsv1.Event
	err := wait.PollUntilContextTimeout(ctxT(t), 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		if got, err := eventsAbout(ctx, kind, namespace, name); err == nil {
			evs = got
		}
		return slices.ContainsFunc(evs, func(e eventsv1.Event) bool {
			return e.Type == eventType && e.Action == action && e.Reason == reason
		}), nil
	})
	if err != nil {
		t.Fatalf("no %s Event %s/%s on %s %s; its Events:%s", eventType, action, reason, kind, name, describe(evs))
	}
	return evs
}

// recorder keeps the Events of a reconciler the test runs itself.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Eventf(_ k8sruntime.Object, _ k8sruntime.Object, eventType, reason, action, note string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf("%s %s/%s: %s", eventType, action, reason, fmt.Sprintf(note, args...)))
}

// A Ready TCP on a Ready DataStore, as an operator sees it: its series on the manager's
// /metrics, its transitions as Events, one each, and nothing more while it rests.
func TestMetricsAndEvents(t *testing.T) {
	etcd := testkit.StartEtcd(t)
	if err := env.Client.Create(ctxT(t), dataStoreFor("observed", etcd)); err != nil {
		t.Fatal(err)
	}
	tcp := newTCP("observed", "v1.36.1")
	tcp.Spec.DataStore = "observed"
	if err := env.Client.Create(ctxT(t), tcp); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Deployment", func(ctx context.Context) (bool, error) {
		tcp = getTCP(ctx, t, "observed")
		return tcp.Status.Kubernetes.Deployment.Name == "observed", fmt.Errorf("conditions %v", tcp.Status.Conditions)
	})
	rollOut(t, "observed")
	tcp = waitStatus(t, "observed", kamajiv1alpha1.VersionReady)
	self := map[string]string{"namespace": "default", "name": "observed"}

	t.Run("the manager's /metrics shows the TCP, its DataStore, certificates, steps and plugin", func(t *testing.T) {
		// usedBy reaches the DataStore's status a moment after the TCP's.
		var f metricstest.Families
		eventually(t, "the DataStore's tenant count", func(context.Context) (bool, error) {
			f = scrapeManager(t)
			v, _ := f.Value("kamaji_datastore_tenant_control_planes", map[string]string{"name": "observed"})
			return v == 1, fmt.Errorf("kamaji_datastore_tenant_control_planes = %v", v)
		})
		expect := func(name string, labels map[string]string, want float64) {
			t.Helper()
			if v, ok := f.Value(name, labels); !ok || v != want {
				t.Errorf("%s%v = %v (present %t), want %v", name, labels, v, ok, want)
			}
		}
		atLeast := func(name string, labels map[string]string, min float64) {
			t.Helper()
			if v, ok := f.Value(name, labels); !ok || v < min {
				t.Errorf("%s%v = %v (present %t), want at least %v", name, labels, v, ok, min)
			}
		}
		if b := f.Series("kamaji_build_info", nil); len(b) != 1 || b[0]["go_version"] != runtime.Version() || b[0]["version"] == "" || b[0]["commit"] == "" {
			t.Errorf("kamaji_build_info %v", b)
		}
		expect("kamaji_tenant_control_plane_info", map[string]string{"namespace": "default", "name": "observed",
			"version": "v1.36.1", "installed_version": "v1.36.1", "datastore": "observed", "driver": "etcd"}, 1)
		for _, s := range []string{"Provisioning", "CertificateAuthorityRotating", "Upgrading", "Migrating", "Ready", "NotReady", "Sleeping", "WriteLimited", "Unknown"} {
			want := 0.0
			if s == "Ready" {
				want = 1
			}
			expect("kamaji_tenant_control_plane_status", map[string]string{"namespace": "default", "name": "observed", "status": s}, want)
		}
		atLeast("kamaji_tenant_control_planes_current", nil, 1)
		expect("kamaji_datastore_info", map[string]string{"name": "observed", "driver": "etcd"}, 1)
		expect("kamaji_datastore_status", map[string]string{"name": "observed", "status": "Ready"}, 1)
		expect("kamaji_datastore_status", map[string]string{"name": "observed", "status": "NotReady"}, 0)
		atLeast("kamaji_datastores_current", nil, 1)

		// Every certificate the manager keeps for the TCP, with the expiry the Secret holds.
		var got []string
		for _, s := range f.Series("kamaji_certificate_expiration_timestamp_seconds", self) {
			got = append(got, s["secret"]+"/"+s["key"])
		}
		slices.Sort(got)
		want := []string{
			"observed-admin-kubeconfig/admin.conf", "observed-admin-kubeconfig/super-admin.conf",
			"observed-api-server-certificate/apiserver.crt", "observed-api-server-kubelet-client-certificate/apiserver-kubelet-client.crt",
			"observed-ca/ca.crt", "observed-controller-manager-kubeconfig/controller-manager.conf", "observed-datastore-certificate/server.crt",
			"observed-front-proxy-ca-certificate/front-proxy-ca.crt", "observed-front-proxy-client-certificate/front-proxy-client.crt",
			"observed-scheduler-kubeconfig/scheduler.conf",
		}
		if !slices.Equal(got, want) {
			t.Errorf("certificates\n got %v\nwant %v", got, want)
		}
		expect("kamaji_certificates_current", self, float64(len(want)))
		api := certOf(t, getSecret(ctxT(t), t, "observed-api-server-certificate"), tenantpki.KeyAPIServerCert)
		expect("kamaji_certificate_expiration_timestamp_seconds", map[string]string{"namespace": "default", "name": "observed",
			"secret": "observed-api-server-certificate", "key": tenantpki.KeyAPIServerCert}, float64(api.NotAfter.Unix()))

		for _, step := range []string{"datastore", "service", "pki", "kubeconfigs", "deployment"} {
			atLeast("kamaji_handler_time_seconds", map[string]string{"step": step, "result": "success"}, 1)
		}
		atLeast("kamaji_plugin_rpc_duration_seconds", map[string]string{"plugin": "datastore-etcd", "method": "DataStore/EnsureTenant", "code": "OK"}, 1)
		atLeast("kamaji_plugin_rpc_duration_seconds", map[string]string{"plugin": "datastore-etcd", "method": "DataStore/ValidateConfig", "code": "OK"}, 1)
		expect("kamaji_plugin_up", map[string]string{"plugin": "datastore-etcd"}, 1)
		if s := f.Series("kamaji_plugin_info", map[string]string{"plugin": "datastore-etcd", "kind": "datastore"}); len(s) != 1 || s[0]["version"] == "" {
			t.Errorf("kamaji_plugin_info %v", s)
		}
		// Other tests of the package kill the plugin: the counter exists, its value is theirs.
		atLeast("kamaji_plugin_restarts_total", map[string]string{"plugin": "datastore-etcd"}, 0)
	})

	t.Run("each transition of the TCP is one Event", func(t *testing.T) {
		evs := waitEvent(t, "TenantControlPlane", "default", "observed", "Normal", "Ready", "Ready")
		seen := map[string]int{}
		for _, e := range evs {
			seen[e.Type+" "+e.Action+"/"+e.Reason]++
			if e.Series != nil {
				t.Errorf("an Event was repeated %d times: %s/%s", e.Series.Count, e.Action, e.Reason)
			}
			if e.ReportingController != "kamaji" {
				t.Errorf("reported by %q", e.ReportingController)
			}
		}
		for _, want := range []string{
			"Normal Ready/Provisioning", "Normal Ready/Ready", "Normal DataStoreReady/Provisioned",
			"Normal CertificatesReady/CertificatesIssued", "Normal KubeconfigsReady/KubeconfigsReady", "Normal ServiceReady/ServiceReady",
			"Normal ControlPlaneAvailable/Ready",
		} {
			if seen[want] != 1 {
				t.Errorf("%d Events %q, want 1; events:%s", seen[want], want, describe(evs))
			}
		}
		if i := slices.IndexFunc(evs, func(e eventsv1.Event) bool { return e.Action == "Ready" && e.Reason == "Ready" }); evs[i].Note != "Ready is True: "+meta.FindStatusCondition(getTCP(ctxT(t), t, "observed").Status.Conditions, "Ready").Message {
			t.Errorf("note %q", evs[i].Note)
		}
	})

	t.Run("a TCP at rest records no Event", func(t *testing.T) {
		// Two passes of the same reconciler on the Ready TCP (beside the manager's, which is at
		// rest too): nothing changes, nothing is recorded.
		host := pluginhost.New([]settings.Plugin{etcdPlugin}, pluginhost.Options{ProbeInterval: -1})
		defer host.Close()
		rec := &recorder{}
		r := &tcpcontroller.Reconciler{
			Client: env.Client, APIReader: env.Client, Plugins: host, Recorder: rec, Now: now,
			DataStores: &datastores.Cache{Reader: env.Client, TTL: time.Minute},
			Options: tcpcontroller.Options{
				MaxConcurrentReconciles: 1, ReconcileTimeout: 30 * time.Second,
				CertificateExpirationDeadline: settings.MinCertificateExpirationDeadline,
			},
		}
		before := getTCP(ctxT(t), t, "observed")
		for range 2 {
			if _, err := r.Reconcile(ctxT(t), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tcp)}); err != nil {
				t.Fatal(err)
			}
		}
		if len(rec.events) != 0 {
			t.Fatalf("passes at rest recorded %v", rec.events)
		}
		// (Other writers, such as the DataStore controller's usage, may touch the TCP meanwhile.)
		if after := getTCP(ctxT(t), t, "observed"); !equality.Semantic.DeepEqual(after.Status.Conditions, before.Status.Conditions) {
			t.Fatalf("the conditions changed at rest: %v -> %v", before.Status.Conditions, after.Status.Conditions)
		}
	})

	t.Run("an upgrade is recorded as Upgrading then Ready", func(t *testing.T) {
		updateTCP(t, "observed", func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.Kubernetes.Version = "v1.37.2" })
		waitStatus(t, "observed", kamajiv1alpha1.VersionUpgrading)
		rollOut(t, "observed")
		waitStatus(t, "observed", kamajiv1alpha1.VersionReady)
		eventually(t, "the Events of the upgrade", func(ctx context.Context) (bool, error) {
			evs, err := eventsAbout(ctx, "TenantControlPlane", "default", "observed")
			if err != nil {
				return false, err
			}
			var ready []string
			for _, e := range evs {
				if e.Action == "Ready" {
					ready = append(ready, e.Reason)
				}
			}
			return slices.Equal(ready, []string{"Provisioning", "Ready", "Upgrading", "Ready"}), fmt.Errorf("Ready transitions %v; events:%s", ready, describe(evs))
		})
		f := scrapeManager(t)
		if v, _ := f.Value("kamaji_tenant_control_plane_info", map[string]string{"name": "observed", "installed_version": "v1.37.2"}); v != 1 {
			t.Errorf("the info series does not show the upgrade: %v", f.Series("kamaji_tenant_control_plane_info", self))
		}
	})

	t.Run("a DataStore's failure and recovery are Events, without its secrets", func(t *testing.T) {
		const password = "hunter2-do-not-print"
		ds := dataStoreFor("observed-down", etcd)
		ds.Spec.Endpoints = []string{"127.0.0.1:1"}
		ds.Spec.BasicAuth = &kamajiv1alpha1.BasicAuth{
			Username: kamajiv1alpha1.ContentRef{Content: []byte("root")},
			Password: kamajiv1alpha1.ContentRef{Content: []byte(password)},
		}
		if err := env.Client.Create(ctxT(t), ds); err != nil {
			t.Fatal(err)
		}
		evs := waitEvent(t, "DataStore", "default", "observed-down", "Warning", "Ready", "NotReady")
		// The driver says why (unreachable, or a connection it refuses to set up: its call).
		if !slices.ContainsFunc(evs, func(e eventsv1.Event) bool { return e.Type == "Warning" && e.Action == "ConfigValid" }) {
			t.Errorf("no Warning Event for ConfigValid; events:%s", describe(evs))
		}
		eventually(t, "the DataStore NotReady on /metrics", func(context.Context) (bool, error) {
			v, _ := scrapeManager(t).Value("kamaji_datastore_status", map[string]string{"name": "observed-down", "status": "NotReady"})
			return v == 1, nil
		})

		// The endpoint is fixed: it becomes Ready, recorded once.
		updateDataStore(t, "observed-down", func(ds *kamajiv1alpha1.DataStore) {
			ds.Spec.Endpoints, ds.Spec.BasicAuth = etcd.Endpoints, nil
		})
		evs = waitEvent(t, "DataStore", "default", "observed-down", "Normal", "Ready", "Ready")
		evs = waitEvent(t, "DataStore", "default", "observed-down", "Normal", "ConfigValid", "ConfigValid")
		counts := map[string]int{}
		for _, e := range evs {
			counts[e.Action+"/"+e.Reason]++
			if strings.Contains(e.Note, password) {
				t.Errorf("an Event note carries the password: %s", e.Note)
			}
		}
		for k, n := range counts {
			if n != 1 {
				t.Errorf("%d Events %s, want one per transition: %v", n, k, slices.Sorted(maps.Keys(counts)))
			}
		}
		if err := env.Client.Delete(ctxT(t), ds); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the deleted DataStore's series to go", func(context.Context) (bool, error) {
			s := scrapeManager(t).Series("kamaji_datastore_info", map[string]string{"name": "observed-down"})
			return len(s) == 0, fmt.Errorf("still %v", s)
		})
	})

	t.Run("a deleted TCP leaves no series", func(t *testing.T) {
		if err := env.Client.Delete(ctxT(t), getTCP(ctxT(t), t, "observed")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the TCP's series to go", func(context.Context) (bool, error) {
			f := scrapeManager(t)
			n := len(f.Series("kamaji_tenant_control_plane_info", self)) + len(f.Series("kamaji_tenant_control_plane_status", self)) +
				len(f.Series("kamaji_certificate_expiration_timestamp_seconds", self))
			return n == 0, fmt.Errorf("%d series left", n)
		})
		waitEvent(t, "TenantControlPlane", "default", "observed", "Normal", "Deprovision", "Deprovisioned")
	})
}
