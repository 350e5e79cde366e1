package local_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/sdk"

	"github.com/openhcp/kamaji/cmd/internal/local"
)

func init() {
	registerPlaneSubtest("the manager runs from the chart as a pod with its ServiceAccount", testManagerFromChart)
	registerPlaneSubtest("helm upgrade adds an out-of-tree plugin while tenants run: no failed request, a TCP Ready on it", testHelmUpgradePlugin)
	registerPlaneSubtest("helm uninstall keeps the CRDs, the TCPs and the tenants; up installs the manager again", testHelmUninstall)
	registerPlaneSubtest("plugins delivered by init containers (pluginDelivery=initContainer)", testInitContainerDelivery)
}

// repoRoot is the repository, from this package's folder.
const repoRoot = "../../.."

// helmBin is the helm `make up` uses, built by hack/helm.sh into the cache (once).
func helmBin(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(repoRoot, "hack", "helm.sh")).Output()
	if err != nil {
		t.Fatalf("hack/helm.sh: %v", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "HELM="); ok {
			return v
		}
	}
	t.Fatalf("hack/helm.sh printed no HELM=: %s", out)
	return ""
}

func (e *e2e) helm(t *testing.T, args ...string) string {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(c, helmBin(t), append(args, "--kubeconfig", filepath.Join(e.state, "admin.kubeconfig"))...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(e.state, "helm", "cache"), "HELM_CONFIG_HOME="+filepath.Join(e.state, "helm", "config"), "HELM_DATA_HOME="+filepath.Join(e.state, "helm", "data"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func testManagerFromChart(t *testing.T, e *e2e) {
	pod, err := local.ManagerPod(ctx(t), e.cs)
	if err != nil {
		t.Fatal(err)
	}
	if pod.Spec.ServiceAccountName != "kamaji" || pod.Spec.NodeName != local.DefaultConfig().NodeName {
		t.Errorf("pod %s: serviceAccountName %q on node %q", pod.Name, pod.Spec.ServiceAccountName, pod.Spec.NodeName)
	}
	// Kubernetes 1.37: the chart delivers each plugin by an image volume.
	var images []string
	for _, v := range pod.Spec.Volumes {
		if v.Image != nil {
			images = append(images, v.Image.Reference)
		}
	}
	if !samePlugins(images, e.plugins) {
		t.Errorf("image volumes %v, want one per plugin %v", images, e.plugins)
	}
	if len(pod.Spec.InitContainers) != 0 {
		t.Errorf("init containers %d with image volumes", len(pod.Spec.InitContainers))
	}
	// Its identity is the ServiceAccount's: what RBAC grants it, and refuses.
	sa := "system:serviceaccount:" + local.ManagerNamespace + ":kamaji"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"list", "tenantcontrolplanes.kamaji.clastix.io", "-A"}, "yes"},
		{[]string{"create", "deployments.apps", "-n", "default"}, "yes"},
		{[]string{"update", "leases.coordination.k8s.io", "-n", local.ManagerNamespace}, "yes"},
		{[]string{"delete", "nodes"}, "no"},
		{[]string{"create", "clusterrolebindings.rbac.authorization.k8s.io"}, "no"},
		{[]string{"create", "pods", "--subresource=exec", "-n", "default"}, "no"},
	} {
		args := append([]string{"--kubeconfig", filepath.Join(e.state, "admin.kubeconfig"), "auth", "can-i", "--as", sa}, c.args...)
		out, _ := exec.Command(e.kubectl, args...).Output() // stdout: yes or no (warnings go to stderr)
		if got := strings.TrimSpace(string(out)); got != c.want {
			t.Errorf("kubectl auth can-i %s as %s: %q, want %q", strings.Join(c.args, " "), sa, got, c.want)
		}
	}
	// The apiserver reaches the webhooks through the chart's Service: a TCP the webhook refuses.
	probe := local.SampleTCP("webhook-probe", "default")
	probe.Spec.Kubernetes.Version = "v1.99.0"
	err = e.cl.Create(ctx(t), probe, client.DryRunAll)
	if err == nil || !strings.Contains(err.Error(), "spec.kubernetes.version") {
		t.Errorf("a TCP at v1.99.0: %v, want the webhook's refusal naming spec.kubernetes.version", err)
	}
	vwc, err := e.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx(t), "kamaji-validating-webhook-configuration", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range vwc.Webhooks {
		if s := w.ClientConfig.Service; s == nil || s.Name != "kamaji-webhook-service" || s.Namespace != local.ManagerNamespace || len(w.ClientConfig.CABundle) == 0 {
			t.Errorf("webhook %s: clientConfig %+v", w.Name, w.ClientConfig)
		}
	}
}

// testHelmUpgradePlugin is a plugin vendor's story: build the out-of-tree example plugin
// (examples/datastore-plugin, its own module), check it with `kamaji plugin verify` against the
// plane's etcd, add it to the running release with one `helm upgrade --set`, and put a TCP on
// a DataStore of its driver, while two clients poll tenant-00 and must see no failed request,
// and no tenant pod restarts.
func testHelmUpgradePlugin(t *testing.T, e *e2e) {
	const name, ds, driver = "example-00", "example", "example-etcd"
	bin := filepath.Join(filepath.Dir(e.kamaji), "kamaji-datastore-example")
	goBuild(t, filepath.Join(repoRoot, "examples", "datastore-plugin"), []string{"GOWORK=off"}, "-o", bin, "./cmd/kamaji-datastore-example")
	pkiDir := filepath.Join(e.state, "pki", "datastore")
	verifyConf := filepath.Join(t.TempDir(), "verify.yaml")
	if err := os.WriteFile(verifyConf, []byte(fmt.Sprintf("driver: %s\nendpoints: [\"10.244.0.1:2379\"]\ncaCertFile: %s/ca.crt\ncaKeyFile: %s/ca.key\nclientCertFile: %s/root.crt\nclientKeyFile: %s/root.key\n",
		driver, pkiDir, pkiDir, pkiDir, pkiDir)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := e.run(3*time.Minute, "plugin", "verify", "--plugin", bin, "--config", verifyConf)
	if err != nil || strings.Contains(out, "FAIL") {
		t.Fatalf("kamaji plugin verify: %v\n%s", err, out)
	}
	t.Logf("kamaji plugin verify:\n%s", out)
	sum, err := sdk.FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}

	before := tenantPodsByUID(t, e, "tenant-00", "tenant-01")
	oldPod, err := local.ManagerPod(ctx(t), e.cs)
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.tenantREST(t, "tenant-00")
	raw := startRawPoller(cfg)
	cg, _ := startClientGoPoller(t, cfg)
	pollers := []*poller{raw, cg}
	defer func() {
		for _, p := range pollers {
			p.halt()
		}
	}()

	e.helm(t, "upgrade", local.ManagerRelease, filepath.Join(repoRoot, "charts", "kamaji"), "--namespace", local.ManagerNamespace, "--reuse-values",
		"--set", "plugins[0].kind=datastore", "--set", "plugins[0].name=datastore-example",
		"--set", "plugins[0].image=example.com/kamaji-datastore-example:0.1.0",
		"--set-string", "plugins[0].sha256="+sum, "--set", "plugins[0].drivers[0]="+driver)
	e.waitManagerReplaced(t, oldPod.Name)

	store := &kamajiv1alpha1.DataStore{}
	if err := e.cl.Get(ctx(t), client.ObjectKey{Name: "default"}, store); err != nil {
		t.Fatal(err)
	}
	example := &kamajiv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Name: ds}, Spec: *store.Spec.DeepCopy()}
	example.Spec.Driver = driver
	if err := e.cl.Create(ctx(t), example); err != nil {
		t.Fatal(err)
	}
	tcp := local.SampleTCP(name, "default")
	tcp.Spec.DataStore = ds
	if err := e.cl.Create(ctx(t), tcp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.deleteTCP(t, name)
		if err := e.cl.Delete(context.Background(), example); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting DataStore %s: %v", ds, err)
		}
	})
	e.waitStatus(t, name, kamajiv1alpha1.VersionReady)
	if st := e.tcp(t, name).Status.Storage; st.Driver != driver || st.DataStoreName != ds {
		t.Errorf("storage %+v", st)
	}
	e.writeKubeconfig(t, name)
	e.kubectlT(t, name, "create", "configmap", "on-the-example-plugin")
	e.kubectlT(t, name, "get", "configmap", "on-the-example-plugin")
	// tenant-00, on the etcd plugin, kept its data and its answers.
	if _, err := e.kubectlErr("tenant-00", "get", "ns", "kube-system"); err != nil {
		t.Error(err)
	}

	for _, p := range pollers {
		p.halt()
		ok, failures, _ := p.result()
		t.Logf("%s: %d answers, %d failures through the helm upgrade", p, ok, len(failures))
		if ok == 0 || len(failures) > 0 {
			t.Errorf("%s: %d answers, failures: %v", p, ok, failures)
		}
	}
	if after := tenantPodsByUID(t, e, "tenant-00", "tenant-01"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the tenants' pods changed through the manager's upgrade:\nbefore %v\nafter  %v", before, after)
	}
}

// tenantPodsByUID lists the tenants' pods as name/uid/restarts, sorted by name.
func tenantPodsByUID(t *testing.T, e *e2e, names ...string) []string {
	t.Helper()
	var out []string
	for _, n := range names {
		for _, p := range e.tenantPods(t, n) {
			restarts := int32(0)
			for _, c := range p.Status.ContainerStatuses {
				restarts += c.RestartCount
			}
			out = append(out, fmt.Sprintf("%s/%s/%d", p.Name, p.UID, restarts))
		}
	}
	return out
}

// testHelmUninstall removes the manager's release: the CRDs (their own release), the TCPs and
// the tenants' control planes stay, and the tenants keep answering; `kamaji local up` installs
// the release again and the TCPs are reconciled as before.
func testHelmUninstall(t *testing.T, e *e2e) {
	e.helm(t, "uninstall", local.ManagerRelease, "--namespace", local.ManagerNamespace, "--wait")
	pods, err := e.cs.CoreV1().Pods(local.ManagerNamespace).List(ctx(t), metav1.ListOptions{LabelSelector: local.ManagerSelector})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			t.Errorf("manager pod %s still there after uninstall", p.Name)
		}
	}
	if _, err := e.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx(t), "kamaji-validating-webhook-configuration", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the validating webhook configuration after uninstall: %v", err)
	}
	for _, n := range []string{"tenant-00", "tenant-01"} {
		e.tcp(t, n) // still there
		if _, err := e.kubectlErr(n, "get", "ns"); err != nil {
			t.Errorf("%s without a manager: %v", n, err)
		}
	}
	out, err := e.run(5*time.Minute, "local", "up", "--state-dir", e.state, "--bin-dir", filepath.Dir(e.kamaji), "--tenants", "2")
	if err != nil {
		t.Fatalf("kamaji local up after helm uninstall: %v\n%s", err, out)
	}
	for _, n := range []string{"tenant-00", "tenant-01"} {
		e.waitStatus(t, n, kamajiv1alpha1.VersionReady)
	}
}

// testInitContainerDelivery switches the release to the delivery of clusters without image
// volumes: init containers copy kamaji, then each plugin's binary, out of their images into an
// emptyDir. The manager starts its plugins from there (their sha256 pinned as before), and the
// tenants stay Ready. The later subtests run on this release.
func testInitContainerDelivery(t *testing.T, e *e2e) {
	oldPod, err := local.ManagerPod(ctx(t), e.cs)
	if err != nil {
		t.Fatal(err)
	}
	e.helm(t, "upgrade", local.ManagerRelease, filepath.Join(repoRoot, "charts", "kamaji"), "--namespace", local.ManagerNamespace, "--reuse-values", "--set", "pluginDelivery=initContainer")
	var pod *corev1.Pod
	eventually(t, "the manager's pod with init containers to be Ready", func() error {
		p, err := local.ManagerPod(ctx(t), e.cs)
		if err != nil {
			return err
		}
		if p.Name == oldPod.Name || !podReady(p) {
			return fmt.Errorf("pod %s (ready %v)", p.Name, podReady(p))
		}
		pod = p
		return nil
	})
	var inits []string
	for _, c := range pod.Status.InitContainerStatuses {
		if c.State.Terminated == nil || c.State.Terminated.ExitCode != 0 {
			t.Errorf("init container %s: %+v", c.Name, c.State)
		}
		inits = append(inits, c.Name)
	}
	// kamaji itself, then one per plugin.
	if len(inits) == 0 || inits[0] != "install-kamaji" || !samePlugins(inits[1:], e.plugins) {
		t.Errorf("init containers %v, want install-kamaji and one per plugin %v", inits, e.plugins)
	}
	for _, v := range pod.Spec.Volumes {
		if v.Image != nil {
			t.Errorf("image volume %s with initContainer delivery", v.Name)
		}
	}
	for _, n := range []string{"tenant-00", "tenant-01"} {
		e.waitStatus(t, n, kamajiv1alpha1.VersionReady)
	}
	// The new pod has no image volume: a plugin up in it runs from the init containers' copy.
	eventually(t, "the etcd plugin up in the new manager", func() error {
		if up := pluginMetric(t, e, "kamaji_plugin_up", "datastore-etcd"); up != 1 {
			return fmt.Errorf("kamaji_plugin_up{plugin=datastore-etcd} = %v", up)
		}
		return nil
	})
	if _, err := e.kubectlErr("tenant-00", "get", "ns"); err != nil {
		t.Error(err)
	}
}

// samePlugins tells whether names (image references ghcr.io/openhcp/kamaji-<plugin>:<tag>, or
// init containers install-<plugin>) are one per plugin of plugins (datastore-etcd, ...).
func samePlugins(names, plugins []string) bool {
	var got []string
	for _, n := range names {
		n = strings.TrimPrefix(n, "install-")
		if _, after, ok := strings.Cut(n, "/kamaji-"); ok {
			n, _, _ = strings.Cut(after, ":")
		}
		got = append(got, n)
	}
	want := slices.Clone(plugins)
	slices.Sort(got)
	slices.Sort(want)
	return slices.Equal(got, want)
}

// waitManagerReplaced waits until a new manager pod is ready and the pod old is gone.
func (e *e2e) waitManagerReplaced(t *testing.T, old string) {
	t.Helper()
	eventually(t, "the manager's new pod to replace "+old, func() error {
		pod, err := local.ManagerPod(ctx(t), e.cs)
		if err != nil {
			return err
		}
		if pod.Name == old || !podReady(pod) {
			return fmt.Errorf("pod %s (ready %v)", pod.Name, podReady(pod))
		}
		if p, err := e.cs.CoreV1().Pods(local.ManagerNamespace).Get(ctx(t), old, metav1.GetOptions{}); err == nil {
			return fmt.Errorf("the old pod %s is still there (%s)", old, p.Status.Phase)
		}
		return nil
	})
}
