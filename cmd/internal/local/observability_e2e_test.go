package local_test

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/metrics"
	"github.com/openhcp/kamaji/core/metrics/metricstest"
	"github.com/openhcp/kamaji/core/tenantpki"

	"github.com/openhcp/kamaji/cmd/internal/local"
)

func init() {
	registerPlaneSubtest("the manager metrics show the kamaji series for a Ready TCP", testManagerMetrics)
}

// managerMetricsURL is the /metrics of the manager's pod on the plane.
func (e *e2e) managerMetricsURL(t *testing.T) string {
	t.Helper()
	u, err := local.ManagerMetricsURL(ctx(t), e.cs)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// testManagerMetrics scrapes the manager as Prometheus would and checks the series a user
// queries for tenant-00 (Ready) and its DataStore "default": Kamaji's kamaji_* metrics, with
// their labels and values matching the objects, and ours for the etcd plugin.
func testManagerMetrics(t *testing.T, e *e2e) {
	const name = "tenant-00"
	e.waitStatus(t, name, kamajiv1alpha1.VersionReady)
	// Read from the manager's cache, the state series may lag the objects by a moment.
	eventually(t, "the kamaji series to describe "+name+" and its DataStore", func() error { return e.checkManagerMetrics(t, name) })
}

// checkManagerMetrics scrapes the manager once and lists what is missing or wrong.
func (e *e2e) checkManagerMetrics(t *testing.T, name string) error {
	const ds, plugin = "default", "datastore-etcd" // the chart names a bundled plugin by its key
	tcp := e.tcp(t, name)
	var store kamajiv1alpha1.DataStore
	if err := e.cl.Get(ctx(t), client.ObjectKey{Name: ds}, &store); err != nil {
		return err
	}
	if store.Status.Plugin == nil {
		return fmt.Errorf("DataStore %s reports no plugin: %+v", ds, store.Status)
	}
	var tcps kamajiv1alpha1.TenantControlPlaneList
	var dss kamajiv1alpha1.DataStoreList
	if err := e.cl.List(ctx(t), &tcps); err != nil {
		return err
	}
	if err := e.cl.List(ctx(t), &dss); err != nil {
		return err
	}
	f, err := metricstest.Scrape(e.managerMetricsURL(t))
	if err != nil {
		return err
	}
	var problems []string
	// want checks that a series of family with (at least) labels exists, with value v when
	// v >= 0, and returns its value.
	want := func(family string, labels map[string]string, v float64) float64 {
		got, ok := f.Value(family, labels)
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("no %s series with %v (its series: %v)", family, labels, f.Series(family, nil)))
		case v >= 0 && got != v:
			problems = append(problems, fmt.Sprintf("%s%v = %v, want %v", family, labels, got, v))
		}
		return got
	}
	atLeastOne := func(family string, labels map[string]string) {
		if n := want(family, labels, -1); n < 1 {
			problems = append(problems, fmt.Sprintf("%s%v = %v, want at least 1", family, labels, n))
		}
	}

	// The build.
	if s := f.Series("kamaji_build_info", nil); len(s) != 1 || s[0]["version"] == "" || !strings.HasPrefix(s[0]["go_version"], "go") || s[0]["commit"] == "" {
		problems = append(problems, fmt.Sprintf("kamaji_build_info series %v", s))
	}
	want("kamaji_build_info", nil, 1)

	// The TCP: its versions, DataStore and driver, and its status (1 for Ready, 0 for the rest).
	want("kamaji_tenant_control_plane_info", map[string]string{
		"namespace": "default", "name": name, "version": tcp.Spec.Kubernetes.Version,
		"installed_version": tcp.Status.Kubernetes.Version.Version, "datastore": ds, "driver": "etcd",
	}, 1)
	for _, s := range metrics.TenantControlPlaneStatuses {
		v := 0.0
		if s == kamajiv1alpha1.VersionReady {
			v = 1
		}
		want("kamaji_tenant_control_plane_status", map[string]string{"namespace": "default", "name": name, "status": string(s)}, v)
	}
	want("kamaji_tenant_control_planes_current", nil, float64(len(tcps.Items)))

	// The DataStore.
	want("kamaji_datastore_info", map[string]string{"name": ds, "driver": "etcd"}, 1)
	want("kamaji_datastore_status", map[string]string{"name": ds, "status": metrics.DataStoreReady}, 1)
	want("kamaji_datastore_status", map[string]string{"name": ds, "status": metrics.DataStoreNotReady}, 0)
	want("kamaji_datastores_current", nil, float64(len(dss.Items)))

	// The certificates: counted, and the apiserver's expiry is the one in its Secret.
	atLeastOne("kamaji_certificates_current", map[string]string{"namespace": "default", "name": name})
	want("kamaji_certificate_expiration_timestamp_seconds", map[string]string{
		"namespace": "default", "name": name, "secret": tenantpki.SecretName(name, tenantpki.APIServer), "key": tenantpki.KeyAPIServerCert,
	}, float64(e.apiServerCert(t, name).NotAfter.Unix()))

	// The reconcile steps, by step and result: the admin-side and tenant-side steps of a Ready
	// TCP's passes succeeded.
	for _, step := range []string{"datastore", "service", "pki", "kubeconfigs", "deployment", "tenant-client", "write-permissions"} {
		atLeastOne("kamaji_handler_time_seconds", map[string]string{"step": step, "result": metrics.ResultSuccess})
	}

	// The etcd plugin: its RPCs by method and code, its restart counter, its info and up.
	for _, m := range []string{"Identity/Probe", "DataStore/ValidateConfig"} {
		atLeastOne("kamaji_plugin_rpc_duration_seconds", map[string]string{"plugin": plugin, "method": m, "code": "OK"})
	}
	want("kamaji_plugin_restarts_total", map[string]string{"plugin": plugin}, -1)
	want("kamaji_plugin_info", map[string]string{
		"plugin": plugin, "kind": "datastore", "version": store.Status.Plugin.Version, "protocol": strconv.Itoa(int(store.Status.Plugin.Protocol)),
	}, 1)
	want("kamaji_plugin_up", map[string]string{"plugin": plugin}, 1)

	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	var methods []string
	for _, s := range f.Series("kamaji_plugin_rpc_duration_seconds", map[string]string{"plugin": plugin}) {
		methods = append(methods, s["method"]+" "+s["code"])
	}
	sort.Strings(methods)
	t.Logf("etcd plugin RPCs seen: %v", methods)
	return nil
}
