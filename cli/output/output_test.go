package output

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"

	"github.com/openhcp/kamaji/cli/certs"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

func tenant(ns, name string, state kamajiv1alpha1.KubernetesVersionStatus, installed, wanted string, conds ...metav1.Condition) kamajiv1alpha1.TenantControlPlane {
	t := kamajiv1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, CreationTimestamp: ago(3 * time.Hour),
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kamaji"}}},
		Spec: kamajiv1alpha1.TenantControlPlaneSpec{DataStore: "default", Kubernetes: kamajiv1alpha1.KubernetesSpec{Version: wanted}},
	}
	t.Status.Kubernetes.Version = kamajiv1alpha1.KubernetesVersion{Version: installed, Status: ptr.To(state)}
	t.Status.Conditions = conds
	return t
}

func sampleTenants() []kamajiv1alpha1.TenantControlPlane {
	a := tenant("team-a", "tenant-00", kamajiv1alpha1.VersionReady, "v1.37.2", "v1.37.2", metav1.Condition{Type: "Ready", Status: "True", Reason: "Ready"})
	a.Status.ControlPlaneEndpoint = "10.96.214.237:6443"
	a.Status.Storage.DataStoreName = "default"
	a.Status.KubeConfig.Admin.SecretName = "tenant-00-admin-kubeconfig"
	a.Status.Kubernetes.Deployment.AvailableReplicas = 2
	a.Status.Storage.Usage = &kamajiv1alpha1.StorageUsage{Bytes: ptr.To[int64](1536), Keys: ptr.To[int64](42)}
	b := tenant("team-a", "broken", kamajiv1alpha1.VersionProvisioning, "", "v1.36.3",
		metav1.Condition{Type: "Ready", Status: "False", Reason: "Provisioning"},
		metav1.Condition{Type: "DataStoreReady", Status: "False", Reason: "ProvisioningFailed", Message: strings.Repeat("x", 120)})
	b.Annotations = map[string]string{kamajiv1alpha1.PausedAnnotation: ""}
	c := tenant("default", "upgrading", kamajiv1alpha1.VersionUpgrading, "v1.36.3", "v1.37.2",
		metav1.Condition{Type: "Ready", Status: "False", Reason: "Upgrading", Message: "rolling out v1.37.2 (installed v1.36.3)"})
	c.Spec.ControlPlane.Deployment.Replicas = ptr.To[int32](1)
	return []kamajiv1alpha1.TenantControlPlane{a, b, c}
}

func TestTenantsTable(t *testing.T) {
	var b bytes.Buffer
	if err := Tenants(&b, sampleTenants()[:2], TenantOptions{Now: now}); err != nil {
		t.Fatal(err)
	}
	want := `NAME        STATUS                VERSION   ENDPOINT             DATASTORE   AGE   MESSAGE
broken      Provisioning,Paused   v1.36.3   <none>               default     3h    DataStoreReady=False Provision ... ` + strings.Repeat("x", 85) + `
tenant-00   Ready                 v1.37.2   10.96.214.237:6443   default     3h
`
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestTenantsWideAllNamespaces(t *testing.T) {
	var b bytes.Buffer
	if err := Tenants(&b, sampleTenants(), TenantOptions{Wide: true, AllNamespaces: true, Now: now}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines:\n%s", len(lines), b.String())
	}
	for _, h := range []string{"NAMESPACE", "REPLICAS", "KUBECONFIG", "USAGE", "MESSAGE"} {
		if !strings.Contains(lines[0], h) {
			t.Errorf("header %q lacks %s", lines[0], h)
		}
	}
	// Sorted by namespace, then name; wide prints MESSAGE whole.
	if !strings.HasPrefix(lines[1], "default ") || !strings.Contains(lines[1], "v1.36.3->v1.37.2") || !strings.Contains(lines[1], "0/1") {
		t.Errorf("upgrading row %q", lines[1])
	}
	if !strings.Contains(lines[2], strings.Repeat("x", 120)) {
		t.Errorf("wide truncated MESSAGE: %q", lines[2])
	}
	if !strings.Contains(lines[3], "2/2") || !strings.Contains(lines[3], "tenant-00-admin-kubeconfig") || !strings.Contains(lines[3], "1.5 KiB, 42 keys") {
		t.Errorf("ready row %q", lines[3])
	}
}

func TestTenantsEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := Tenants(&b, nil, TenantOptions{}); err != nil || b.Len() != 0 {
		t.Fatalf("%v %q", err, b.String())
	}
}

func TestTenantObjectsJSONAndYAML(t *testing.T) {
	for _, f := range []Format{JSON, YAML} {
		var b bytes.Buffer
		if err := TenantObjects(&b, f, sampleTenants()); err != nil {
			t.Fatal(err)
		}
		var got struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Items      []kamajiv1alpha1.TenantControlPlane
		}
		var err error
		if f == JSON {
			err = json.Unmarshal(b.Bytes(), &got)
		} else {
			err = yaml.Unmarshal(b.Bytes(), &got)
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", f, err, b.String())
		}
		if got.Kind != "List" || got.APIVersion != "v1" || len(got.Items) != 3 {
			t.Fatalf("%s: %s/%s with %d items", f, got.APIVersion, got.Kind, len(got.Items))
		}
		first := got.Items[0]
		if first.Kind != "TenantControlPlane" || first.APIVersion != "kamaji.clastix.io/v1alpha1" || first.Name != "upgrading" || first.ManagedFields != nil {
			t.Errorf("%s: first item %s %s %s managedFields %v", f, first.APIVersion, first.Kind, first.Name, first.ManagedFields)
		}
	}
	var b bytes.Buffer
	if err := TenantObjects(&b, JSON, nil); err != nil || !strings.Contains(b.String(), `"items": []`) {
		t.Fatalf("empty list: %v %s", err, b.String())
	}
	if err := Objects(&b, Wide, nil); err == nil {
		t.Fatal("wide accepted for objects")
	}
}

func TestParseFormat(t *testing.T) {
	for _, ok := range []string{"", "wide", "json", "yaml"} {
		if _, err := ParseFormat(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	if _, err := ParseFormat("jsonpath={.x}"); err == nil || !strings.Contains(err.Error(), "use json, yaml or wide") {
		t.Fatalf("err %v", err)
	}
}

func sampleDataStores() []kamajiv1alpha1.DataStore {
	etcd := kamajiv1alpha1.DataStore{
		ObjectMeta: metav1.ObjectMeta{Name: "default", CreationTimestamp: ago(48 * time.Hour)},
		Spec:       kamajiv1alpha1.DataStoreSpec{Driver: "etcd", Endpoints: []string{"10.244.0.1:2379"}},
		Status: kamajiv1alpha1.DataStoreStatus{
			UsedBy: []string{"team-a/tenant-00", "team-a/broken"},
			Plugin: &kamajiv1alpha1.PluginStatus{Name: "etcd", Version: "v0.3.0", Protocol: 1},
			Usage: &kamajiv1alpha1.DataStoreUsage{
				StorageUsage: kamajiv1alpha1.StorageUsage{Bytes: ptr.To[int64](3 << 20), Keys: ptr.To[int64](1200), LastUpdate: ago(2 * time.Minute)},
				Tenants:      2,
			},
			Conditions: []metav1.Condition{{Type: "Ready", Status: "True", Reason: "Ready"}},
		},
	}
	pg := kamajiv1alpha1.DataStore{
		ObjectMeta: metav1.ObjectMeta{Name: "postgresql", CreationTimestamp: ago(time.Hour)},
		Spec:       kamajiv1alpha1.DataStoreSpec{Driver: "PostgreSQL", Endpoints: []string{"db:5432"}},
		Status: kamajiv1alpha1.DataStoreStatus{Conditions: []metav1.Condition{
			{Type: "Ready", Status: "False", Reason: "NotReady"},
			{Type: "PluginReady", Status: "False", Reason: "PluginBinaryMissing", Message: "no such file"},
		}},
	}
	return []kamajiv1alpha1.DataStore{pg, etcd}
}

func TestDataStoresTable(t *testing.T) {
	var b bytes.Buffer
	if err := DataStores(&b, sampleDataStores(), DataStoreOptions{Now: now}); err != nil {
		t.Fatal(err)
	}
	want := `NAME         DRIVER       READY   PLUGIN        TENANTS   USAGE                            AGE   MESSAGE
default      etcd         True    etcd@v0.3.0   2         3.0 MiB, 1200 keys (2 tenants)   2d
postgresql   PostgreSQL   False   <none>        0         <none>                           60m   PluginReady=False PluginBinaryMissing: no such file
`
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := DataStores(&b, sampleDataStores(), DataStoreOptions{Wide: true, Now: now}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"ENDPOINTS", "PROTOCOL", "USAGE UPDATED", "USED BY", "10.244.0.1:2379", "2m ago", "team-a/tenant-00,team-a/broken"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("wide output lacks %q:\n%s", s, b.String())
		}
	}
	b.Reset()
	if err := DataStoreObjects(&b, YAML, sampleDataStores()); err != nil || !strings.Contains(b.String(), "kind: DataStore") {
		t.Fatalf("yaml: %v\n%s", err, b.String())
	}
}

func TestFormats(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
	if got := Usage(nil, ptr.To[int64](3)); got != "3 keys" {
		t.Errorf("Usage keys only: %q", got)
	}
	if got := Usage(nil, nil); got != "" {
		t.Errorf("Usage nothing: %q", got)
	}
	if got := Age(time.Time{}, now); got != "<unknown>" {
		t.Errorf("Age zero %q", got)
	}
	if got := Truncate("abcdef", 5); got != "ab..." {
		t.Errorf("Truncate %q", got)
	}
	// A long message keeps its start and its cause, cut on spaces.
	msg := "ControlPlaneAvailable=False Provisioning: waiting for the control plane pods: pod crash-5d8f7c9b6-x2x4z, container kube-apiserver: CrashLoopBackOff (last exit code 1: Error: unknown flag: --no-such-flag)"
	got := Truncate(msg, 120)
	if want := "ControlPlaneAvailable=False ... CrashLoopBackOff (last exit code 1: Error: unknown flag: --no-such-flag)"; got != want {
		t.Errorf("Truncate(long, 120) =\n%q, want\n%q", got, want)
	}
	if n := len([]rune(got)); n > 120 {
		t.Errorf("Truncate(long, 120) is %d runes", n)
	}
	if got := Truncate(msg, len(msg)); got != msg {
		t.Errorf("a message that fits is cut: %q", got)
	}
	for d, want := range map[time.Duration]string{
		400 * 24 * time.Hour: "in 400d", 10 * 24 * time.Hour: "in 10d (soon)", -48 * time.Hour: "EXPIRED 2d ago",
	} {
		if got := Expiry(now.Add(d), now); got != want {
			t.Errorf("Expiry(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestDescribe(t *testing.T) {
	tcp := sampleTenants()[0]
	tcp.UID = "uid-1"
	tcp.Spec.DataStoreSchema, tcp.Spec.DataStoreUsername = "t_team_a_tenant_00_abc", "u_abc"
	tcp.Status.Storage.Driver = "etcd"
	tcp.Status.Storage.Setup.Schema = "t_team_a_tenant_00_abc"
	tcp.Status.Storage.Overrides = []kamajiv1alpha1.StorageOverrideStatus{{DataStoreName: "events", Schema: "t_team_a_tenant_00_abc"}}
	tcp.Status.Conditions = []metav1.Condition{
		{Type: "DataStoreReady", Status: "True", Reason: "Provisioned", LastTransitionTime: ago(3 * time.Hour)},
		{Type: "Ready", Status: "True", Reason: "Ready", Message: "2/2 control plane replicas run v1.37.2", LastTransitionTime: ago(time.Hour)},
	}
	tcp.Spec.Addons.CoreDNS = &kamajiv1alpha1.AddonSpec{}
	tcp.Status.Addons.CoreDNS = kamajiv1alpha1.AddonStatus{Enabled: true, LastUpdate: ago(time.Hour)}
	tcp.Spec.Addons.Konnectivity = &kamajiv1alpha1.KonnectivitySpec{}
	ds := sampleDataStores()[1]
	d := Description{
		TCP: &tcp, DataStore: &ds, Now: now, MaxEvents: 2,
		Certs: []certs.Cert{
			{Secret: "tenant-00-ca", Key: "ca.crt", Subject: "kubernetes", NotAfter: now.Add(3650 * 24 * time.Hour)},
			{Secret: "tenant-00-api-server-certificate", Key: "apiserver.crt", Subject: "kube-apiserver", NotAfter: now.Add(20 * 24 * time.Hour)},
		},
		CertErrors: []string{"Secret tenant-00-front-proxy-ca-certificate: no permission: User \"bob\" cannot get resource \"secrets\""},
		Events: []corev1.Event{
			{Type: "Normal", Reason: "Old", Message: "first", LastTimestamp: ago(50 * time.Minute)},
			{Type: "Warning", Reason: "Newest", Message: "third\nline", Count: 3, LastTimestamp: ago(time.Minute)},
			{Type: "Normal", Reason: "Middle", Message: "second", EventTime: metav1.NewMicroTime(now.Add(-10 * time.Minute))},
		},
	}
	var b bytes.Buffer
	if err := Describe(&b, d); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Name:        tenant-00\n",
		"Status:      Ready\n",
		"Ready:       Ready=True Ready: 2/2 control plane replicas run v1.37.2\n",
		"Endpoint:    10.96.214.237:6443\n",
		"Kubeconfig:  Secret tenant-00-admin-kubeconfig (kubectl kamaji kubeconfig tenant-00 -n team-a)\n",
		"\nConditions:\n  TYPE ",
		"  tenant-00-ca                       ca.crt          kubernetes       2036-11-20T12:00:00Z   in 10y\n",
		"in 20d (soon)",
		"  ! Secret tenant-00-front-proxy-ca-certificate: no permission",
		"  Driver:           etcd\n",
		"  Schema:           t_team_a_tenant_00_abc\n",
		"  Usage:            1.5 KiB, 42 keys\n",
		"  Override:         DataStore events (schema t_team_a_tenant_00_abc, user <none>)\n",
		"  Plugin:           etcd@v0.3.0\n",
		"  DataStore ready:  Ready=True Ready\n",
		"Replicas:    2 desired, 2 available\n",
		"  coreDNS:       applied (last change 60m ago)\n",
		"  kubeProxy:     not requested\n",
		"  konnectivity:  requested, not applied yet",
		"\nEvents:\n  LAST SEEN   TYPE      REASON   MESSAGE\n  10m         Normal    Middle   second\n  60s         Warning   Newest   third line (x3)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("describe lacks %q:\n%s", want, out)
		}
	}
	// Ready comes first among the conditions, then the steps in order.
	if strings.Index(out, "  Ready ") > strings.Index(out, "  DataStoreReady ") {
		t.Errorf("conditions out of order:\n%s", out)
	}
	if strings.Contains(out, "Old") {
		t.Errorf("more than MaxEvents events:\n%s", out)
	}
}

func TestDescribeEmptySections(t *testing.T) {
	tcp := tenant("ns", "fresh", kamajiv1alpha1.VersionProvisioning, "", "v1.37.2")
	var b bytes.Buffer
	if err := Describe(&b, Description{TCP: &tcp, Now: now, DataStoreErr: "DataStore default not found", EventsErr: "no permission: events"}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"Version:     v1.37.2 (not installed yet)", "Conditions:\n  <none>", "Certificates:\n  <none>", "  Error:   ! DataStore default not found", "Events:\n  ! no permission: events"} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
}
