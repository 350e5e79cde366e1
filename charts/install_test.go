package charts_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/manager"
	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/core/testenv"
)

// The charts against a real kube-apiserver, as on a cluster without nodes: helm installs both
// charts (the apiserver validates every object), the manager runs beside it with the chart's
// own kamaji.yaml and the chart's ServiceAccount identity (a TokenRequest token: the chart's
// RBAC is enforced), and the apiserver reaches its webhooks through the chart's Service (an
// EndpointSlice stands in for the pod, --enable-aggregator-routing makes the apiserver use it),
// trusting the CA the manager injected. With that manager a tenant lives its admin-side life
// (tenant_life_test.go) and the ServiceAccount's permissions are asked (rbac_test.go). No pod
// runs: images, image volumes and init containers are not exercised here.
func TestInstallUpgradeUninstallOnARealAPIServer(t *testing.T) {
	hostIP := nonLoopbackIPv4(t)
	// The etcd plugin as it ships, pinned by the chart's own value; its path is the test's.
	etcdPlugin, err := testenv.BuildPlugin(t.TempDir(), "datastore-etcd", settings.KindDataStore, "etcd")
	if err != nil {
		t.Fatal(err)
	}
	values := []string{"--values", "testdata/values/digests.yaml", "--values", "testdata/values/datastores.yaml",
		"--set", "bundledPlugins.datastore-etcd.sha256=" + etcdPlugin.SHA256}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	plane, err := testenv.Start(ctx, testenv.Options{ExtraAPIServerArgs: []string{
		"--enable-aggregator-routing=true",
		// As on clusters that enforce it: the ownerReferences the manager sets (with
		// blockOwnerDeletion) need update on the owner's finalizers.
		"--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer plane.Stop()
	kubeconfig := writeKubeconfig(t, plane.Config)
	kc, err := kubernetes.NewForConfig(plane.Config)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(plane.Config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	h := func(args ...string) string {
		t.Helper()
		out, err := runHelm(t, append(args, "--kubeconfig", kubeconfig)...)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return out
	}

	h("install", "kamaji-crds", "./kamaji-crds")
	// The release's DataStore is created although no manager serves the DataStore webhook yet.
	h(append([]string{"install", "kamaji", "./kamaji", "--namespace", "kamaji-system", "--create-namespace"}, values...)...)
	ds := &kamajiv1alpha1.DataStore{}
	if err := cl.Get(ctx, client.ObjectKey{Name: "default"}, ds); err != nil {
		t.Fatalf("the chart's DataStore: %v", err)
	}

	// The manager, with the chart's kamaji.yaml and ServiceAccount; only what needs a pod is
	// moved to the test's ports and folders (and the etcd plugin to where the test built it).
	cm, err := kc.CoreV1().ConfigMaps("kamaji-system").Get(ctx, "kamaji-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const chartEtcdPlugin = "/opt/kamaji/plugins/datastore-etcd/kamaji-datastore-etcd"
	if !strings.Contains(cm.Data["kamaji.yaml"], chartEtcdPlugin) {
		t.Fatalf("the chart's kamaji.yaml has no %s:\n%s", chartEtcdPlugin, cm.Data["kamaji.yaml"])
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "kamaji.yaml")
	if err := os.WriteFile(conf, []byte(strings.ReplaceAll(cm.Data["kamaji.yaml"], chartEtcdPlugin, etcdPlugin.Path)), 0o600); err != nil {
		t.Fatal(err)
	}
	saKubeconfig, saUser := serviceAccountKubeconfig(ctx, t, kc, plane.Config, "kamaji-system", "kamaji")
	// The Gateway API, as on a cluster that serves it: the manager's TLSRoute and Gateway rules
	// are then about kinds the apiserver knows, and can be asked about.
	gateway, err := testenv.GatewayAPICRDs(testenv.GatewayExperimental)
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.InstallCRDs(ctx, apiextensionsclient.NewForConfigOrDie(plane.Config), gateway...); err != nil {
		t.Fatal(err)
	}
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	healthPort, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	mgr := exec.Command(kamaji(t), "manager", "--config", conf,
		"--webhook-port", strconv.Itoa(port), "--health-probe-bind-address", "127.0.0.1:"+strconv.Itoa(healthPort),
		"--metrics-bind-address", "0", "--webhook-cert-dir", filepath.Join(dir, "certs"), "--tmp-directory", filepath.Join(dir, "tmp"))
	logf, err := os.Create(filepath.Join(dir, "manager.log"))
	if err != nil {
		t.Fatal(err)
	}
	mgr.Stdout, mgr.Stderr = logf, logf
	mgr.Env = append(os.Environ(), "KUBECONFIG="+saKubeconfig)
	if err := mgr.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = mgr.Process.Kill()
		_ = mgr.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("manager log:\n%s", b)
		}
	}()
	// The pod the Service would select, here: the manager's webhook port on this host.
	createEndpoints(ctx, t, kc, hostIP, port)

	// Self-managed certificate: the manager writes the Secret and injects the CA into the
	// chart's configurations; then the apiserver calls the webhooks through the Service.
	poll(ctx, t, "the CA bundle in the chart's webhook configurations", func() (bool, error) {
		v, err := kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "kamaji-validating-webhook-configuration", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		m, err := kc.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "kamaji-mutating-webhook-configuration", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return bundled(v.Webhooks[0].ClientConfig, v.Webhooks[1].ClientConfig, m.Webhooks[0].ClientConfig), nil
	})
	if _, err := kc.CoreV1().Secrets("kamaji-system").Get(ctx, "kamaji-webhook-cert", metav1.GetOptions{}); err != nil {
		t.Fatalf("the manager's webhook certificate Secret: %v", err)
	}
	probe := &kamajiv1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: "webhook-probe", Namespace: "default"},
		Spec: kamajiv1alpha1.TenantControlPlaneSpec{
			ControlPlane: kamajiv1alpha1.ControlPlane{Service: kamajiv1alpha1.ServiceSpec{ServiceType: "ClusterIP"}},
			Kubernetes:   kamajiv1alpha1.KubernetesSpec{Version: "v1.99.0"}, // refused by the version rule
		},
	}
	var last error
	poll(ctx, t, "the apiserver to call the manager's webhook through the chart's Service", func() (bool, error) {
		last = cl.Create(ctx, probe.DeepCopy(), client.DryRunAll)
		return last != nil && strings.Contains(last.Error(), "spec.kubernetes.version"), nil
	})
	if !strings.Contains(last.Error(), `admission webhook "vtenantcontrolplane.kb.io" denied the request`) {
		t.Errorf("the refusal does not come from the webhook: %v", last)
	}

	// Only the release's own creations skip the webhook: another DataStore is checked.
	other := &kamajiv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: *ds.Spec.DeepCopy()}
	other.Spec.Driver = "NoSuchDriver"
	if err := cl.Create(ctx, other, client.DryRunAll); err == nil || !strings.Contains(err.Error(), `admission webhook "vdatastore.kb.io" denied the request`) {
		t.Errorf("a DataStore of an unserved driver, not the release's: %v", err)
	}

	t.Run("the manager's ServiceAccount is allowed what it needs, refused the rest", func(t *testing.T) {
		checkPermissions(t, saKubeconfig, saUser, "tenants", "kamaji-system")
	})
	t.Run("a tenant's admin-side life under the chart's RBAC", func(t *testing.T) {
		checkTenantLife(ctx, t, cl, "tenants", "kamaji-system")
	})
	// Whatever the steps above waited for, nothing the manager did was refused (read before
	// the uninstall below takes its RBAC away).
	if b, err := os.ReadFile(logf.Name()); err != nil {
		t.Fatal(err)
	} else if forbidden := forbiddenLines(string(b)); len(forbidden) > 0 {
		t.Errorf("the apiserver refused the manager %d times; first: %s", len(forbidden), forbidden[0])
	}

	// Upgrade: the release's DataStore is updated, through the manager's webhook this time.
	h(append([]string{"upgrade", "kamaji", "./kamaji", "--namespace", "kamaji-system",
		"--set", "datastores[0].spec.endpoints[0]=etcd-1.etcd.kamaji-system.svc:2379"}, values...)...)
	if err := cl.Get(ctx, client.ObjectKey{Name: "default"}, ds); err != nil {
		t.Fatal(err)
	}
	if got := ds.Spec.Endpoints; len(got) != 1 || got[0] != "etcd-1.etcd.kamaji-system.svc:2379" {
		t.Errorf("DataStore endpoints after the upgrade: %v", got)
	}
	// The CA bundle survives the upgrade (helm leaves the field it never set).
	v, err := kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "kamaji-validating-webhook-configuration", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bundled(v.Webhooks[0].ClientConfig) {
		t.Error("helm upgrade removed the injected CA bundle")
	}

	// Uninstall keeps the CRDs and the DataStore (tenant data may live there).
	h("uninstall", "kamaji", "--namespace", "kamaji-system")
	h("uninstall", "kamaji-crds")
	if _, err := kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "kamaji-validating-webhook-configuration", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("webhook configuration after uninstall: %v", err)
	}
	if err := cl.Get(ctx, client.ObjectKey{Name: "default"}, ds); err != nil {
		t.Errorf("the DataStore is gone after uninstall: %v", err)
	}
}

func bundled(ccs ...admissionv1.WebhookClientConfig) bool {
	for _, cc := range ccs {
		if len(cc.CABundle) == 0 {
			return false
		}
	}
	return true
}

func poll(ctx context.Context, t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) { return cond() }); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// createEndpoints points the chart's webhook Service at ip:port with an EndpointSlice, what the
// apiserver resolves a Service by with aggregator routing (it refuses loopback addresses, hence
// the host's own).
func createEndpoints(ctx context.Context, t *testing.T, kc kubernetes.Interface, ip string, port int) {
	t.Helper()
	name, p, ready := "webhook-server", int32(port), true
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "kamaji-webhook-service-test", Namespace: "kamaji-system", Labels: map[string]string{discoveryv1.LabelServiceName: "kamaji-webhook-service"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &p}},
	}
	if _, err := kc.DiscoveryV1().EndpointSlices("kamaji-system").Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func nonLoopbackIPv4(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String()
		}
	}
	t.Fatal("no non-loopback IPv4 address on this host: the apiserver cannot reach a webhook on loopback through a Service, and this test needs one")
	return ""
}

// forbiddenLines are the lines of the manager's log where the apiserver refused it a request
// (RBAC's refusals name the user; admission's, such as blockOwnerDeletion's, do not).
func forbiddenLines(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "is forbidden") {
			out = append(out, l)
		}
	}
	return out
}
