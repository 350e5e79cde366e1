package integration

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/kubeversion"
	"github.com/openhcp/kamaji/core/sleep"

	"github.com/openhcp/kamaji/cli/command"
	"github.com/openhcp/kamaji/cli/jointoken"
)

// seed creates what the read-only tests look at: the DataStore "default" with the status the
// DataStore controller writes, and two namespaces' worth of tenants.
func seed(ctx context.Context) error {
	for _, ns := range []string{"team-b", "kube-system"} {
		if err := cl.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	ds := &kamajiv1alpha1.DataStore{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
		Spec: kamajiv1alpha1.DataStoreSpec{Driver: "MySQL", Endpoints: []string{"mysql.kamaji.svc:3306"},
			BasicAuth: &kamajiv1alpha1.BasicAuth{Username: kamajiv1alpha1.ContentRef{Content: []byte("root")}, Password: kamajiv1alpha1.ContentRef{Content: []byte("pw")}}},
	}
	if err := cl.Create(ctx, ds); err != nil {
		return err
	}
	ds.Status = kamajiv1alpha1.DataStoreStatus{
		UsedBy: []string{"default/alpha", "team-b/beta"},
		Plugin: &kamajiv1alpha1.PluginStatus{Name: "kamaji-datastore-mysql", Version: "v0.4.1", Protocol: 1},
		Usage:  &kamajiv1alpha1.DataStoreUsage{StorageUsage: kamajiv1alpha1.StorageUsage{Bytes: ptr.To[int64](5 << 20), Keys: ptr.To[int64](812), LastUpdate: metav1.Now()}, Tenants: 2},
		Conditions: []metav1.Condition{
			{Type: "Ready", Status: "True", Reason: "Ready", LastTransitionTime: metav1.Now()},
			{Type: "PluginReady", Status: "True", Reason: "PluginReady", LastTransitionTime: metav1.Now()},
		},
	}
	return cl.Status().Update(ctx, ds)
}

func TestListAndDataStores(t *testing.T) {
	newTCP(t, "alpha", func(tcp *kamajiv1alpha1.TenantControlPlane) {
		tcp.Status.Storage.Usage = &kamajiv1alpha1.StorageUsage{Bytes: ptr.To[int64](2048), Keys: ptr.To[int64](17)}
	})
	newTCP(t, "broken", func(tcp *kamajiv1alpha1.TenantControlPlane) {
		tcp.Status.Kubernetes.Version = kamajiv1alpha1.KubernetesVersion{Status: ptr.To(kamajiv1alpha1.VersionProvisioning)}
		tcp.Status.Conditions = []metav1.Condition{
			{Type: "Ready", Status: "False", Reason: "Provisioning", Message: "waiting", LastTransitionTime: metav1.Now()},
			{Type: "DataStoreReady", Status: "False", Reason: "ProvisioningFailed", Message: "Access denied for user 'root'", LastTransitionTime: metav1.Now()},
		}
	})
	beta := &kamajiv1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: "beta", Namespace: "team-b"},
		Spec: kamajiv1alpha1.TenantControlPlaneSpec{DataStore: "default",
			ControlPlane: kamajiv1alpha1.ControlPlane{Service: kamajiv1alpha1.ServiceSpec{ServiceType: "ClusterIP"}},
			Kubernetes:   kamajiv1alpha1.KubernetesSpec{Version: "v1.37.2"}},
	}
	if err := cl.Create(ctxT(t), beta); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Delete(context.Background(), beta) })

	out, _, err := kk(t, "list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME ") {
		t.Fatalf("list:\n%s", out)
	}
	if !regexp.MustCompile(`^alpha\s+Ready\s+v1\.36\.3\s+10\.96\.0\.7:6443\s+default\s+\S+\s*$`).MatchString(lines[1]) {
		t.Errorf("alpha row %q", lines[1])
	}
	if !regexp.MustCompile(`^broken\s+Provisioning\s+v1\.36\.3\s+10\.96\.0\.7:6443\s+default\s`).MatchString(lines[2]) || !strings.Contains(lines[2], "DataStoreReady=False ProvisioningFailed: Access denied for user 'root'") {
		t.Errorf("broken row %q", lines[2])
	}

	out, _, err = kk(t, "list", "-A", "-o", "wide")
	if err != nil || !strings.Contains(out, "NAMESPACE") || !regexp.MustCompile(`(?m)^team-b\s+beta\s+Provisioning\s+v1\.37\.2`).MatchString(out) ||
		!strings.Contains(out, "2.0 KiB, 17 keys") || !strings.Contains(out, "alpha-admin-kubeconfig") {
		t.Fatalf("list -A -o wide: %v\n%s", err, out)
	}

	out, _, err = kk(t, "list", "-n", "team-b", "-o", "yaml")
	if err != nil || !strings.Contains(out, "kind: List") || !strings.Contains(out, "name: beta") || strings.Contains(out, "managedFields") {
		t.Fatalf("list -o yaml: %v\n%s", err, out)
	}

	out, _, err = kk(t, "datastores")
	if err != nil || !regexp.MustCompile(`(?m)^default\s+MySQL\s+True\s+kamaji-datastore-mysql@v0\.4\.1\s+2\s+5\.0 MiB, 812 keys \(2 tenants\)`).MatchString(out) {
		t.Fatalf("datastores: %v\n%s", err, out)
	}
	out, _, err = kk(t, "datastores", "default", "-o", "json")
	var l struct{ Items []kamajiv1alpha1.DataStore }
	if err != nil || json.Unmarshal([]byte(out), &l) != nil || len(l.Items) != 1 || l.Items[0].Status.Plugin.Version != "v0.4.1" {
		t.Fatalf("datastores -o json: %v\n%s", err, out)
	}
}

func TestDescribe(t *testing.T) {
	tcp := newTCP(t, "desc", nil)
	tenantSecrets(t, "desc")
	// One event as core/v1 writes them, one as the manager's events.k8s.io recorder does, one
	// about an older TCP of the same name (another uid).
	for _, e := range []client.Object{
		&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "desc.1"},
			InvolvedObject: corev1.ObjectReference{APIVersion: "kamaji.clastix.io/v1alpha1", Kind: "TenantControlPlane", Namespace: "default", Name: "desc", UID: tcp.UID},
			Type:           "Normal", Reason: "CertificatesIssued", Message: "issued 5 certificates", LastTimestamp: metav1.NewTime(time.Now().Add(-2 * time.Minute))},
		&eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "desc.2"},
			Regarding: corev1.ObjectReference{APIVersion: "kamaji.clastix.io/v1alpha1", Kind: "TenantControlPlane", Namespace: "default", Name: "desc", UID: tcp.UID},
			EventTime: metav1.NewMicroTime(time.Now().Add(-time.Minute)), ReportingController: "kamaji", ReportingInstance: "kamaji-0",
			Action: "Reconcile", Type: "Warning", Reason: "DataStoreSlow", Note: "EnsureTenant took 9s"},
		&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "desc.old"},
			InvolvedObject: corev1.ObjectReference{Kind: "TenantControlPlane", Namespace: "default", Name: "desc", UID: "an-older-one"},
			Type:           "Normal", Reason: "FromTheOldOne", LastTimestamp: metav1.Now()},
	} {
		if err := cl.Create(ctxT(t), e); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Delete(context.Background(), e) })
	}
	out, _, err := kk(t, "describe", "desc")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^Status:\s+Ready$`),
		regexp.MustCompile(`(?m)^Endpoint:\s+10\.96\.0\.7:6443$`),
		regexp.MustCompile(`(?m)^  Ready\s+True\s+Ready\s+\S+\s+2/2 control plane replicas run v1\.36\.3$`),
		regexp.MustCompile(`(?m)^  desc-ca\s+ca\.crt\s+kamaji-test-plane-ca\s+\S+\s+in \d+h \(soon\)$`),
		regexp.MustCompile(`(?m)^  desc-admin-kubeconfig\s+admin\.conf\s+kamaji-test-admin \(system:masters\)\s+\S+\s+in \d+h \(soon\)$`),
		regexp.MustCompile(`(?m)^  ! Secret desc-api-server-certificate: not created yet$`),
		regexp.MustCompile(`(?m)^  Driver:\s+MySQL$`),
		regexp.MustCompile(`(?m)^  Plugin:\s+kamaji-datastore-mysql@v0\.4\.1$`),
		regexp.MustCompile(`(?m)^  \S+\s+Normal\s+CertificatesIssued\s+issued 5 certificates$`),
		regexp.MustCompile(`(?m)^  \S+\s+Warning\s+DataStoreSlow\s+EnsureTenant took 9s$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("describe does not match %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FromTheOldOne") {
		t.Errorf("an event of another TCP of the same name:\n%s", out)
	}
}

func TestKubeconfig(t *testing.T) {
	newTCP(t, "kc", nil)
	newTCP(t, "kc-nosecret", nil)
	newTCP(t, "kc-starting", func(tcp *kamajiv1alpha1.TenantControlPlane) {
		tcp.Status.Kubernetes.Version = kamajiv1alpha1.KubernetesVersion{Status: ptr.To(kamajiv1alpha1.VersionProvisioning)}
		tcp.Status.Conditions = []metav1.Condition{{Type: "ControlPlaneAvailable", Status: "False", Reason: "Provisioning", Message: "waiting for the control plane pods", LastTransitionTime: metav1.Now()}}
	})
	tenantSecrets(t, "kc")
	tenantSecrets(t, "kc-starting")

	_, _, err := kk(t, "kubeconfig", "kc-starting")
	if err == nil || err.Error() != "TenantControlPlane default/kc-starting is not Ready (status Provisioning; ControlPlaneAvailable=False Provisioning: waiting for the control plane pods)" {
		t.Fatalf("not Ready: %v", err)
	}
	_, _, err = kk(t, "kubeconfig", "kc-nosecret")
	if err == nil || !strings.Contains(err.Error(), "the admin kubeconfig Secret default/kc-nosecret-admin-kubeconfig does not exist") {
		t.Fatalf("no Secret: %v", err)
	}

	out, _, err := kk(t, "kubeconfig", "kc")
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := clientcmd.Load([]byte(out)); err != nil || cfg.Clusters["kc"] == nil {
		t.Fatalf("stdout is not the tenant's kubeconfig: %v\n%s", err, out)
	}

	// --merge into a copy of the user's kubeconfig, then use the new context.
	mine := copyFile(t, adminKubeconfig)
	out, _, err = kubectlKamaji(t, mine, "kubeconfig", "kc", "--merge", "--context-name", "kc-ctx")
	if err != nil || !strings.Contains(out, `Context "kc-ctx" added to `+mine) {
		t.Fatalf("--merge: %v %q", err, out)
	}
	cs := kubernetes.NewForConfigOrDie(restFor(t, mine, "kc-ctx"))
	if _, err := cs.CoreV1().Namespaces().Get(ctxT(t), "kube-system", metav1.GetOptions{}); err != nil {
		t.Fatalf("the merged context does not work: %v", err)
	}
	if cfg, _ := clientcmd.LoadFromFile(mine); cfg.CurrentContext != "admin" {
		t.Errorf("--merge without --use changed the current context to %s", cfg.CurrentContext)
	}
	_, _, err = kubectlKamaji(t, mine, "kubeconfig", "kc", "--merge", "--context-name", "kc-ctx")
	if err == nil || !strings.Contains(err.Error(), `already has a context named "kc-ctx"`) {
		t.Fatalf("second --merge: %v", err)
	}
}

func TestJoinCommand(t *testing.T) {
	newTCP(t, "join", nil)
	tenantSecrets(t, "join")
	out, _, err := kk(t, "join-command", "join", "--ttl", "30m")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^kubeadm join 10\.96\.0\.7:6443 --token ([a-z0-9]{6})\.([a-z0-9]{16}) --discovery-token-ca-cert-hash (sha256:[0-9a-f]{64})\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("printed %q", out)
	}
	if want := jointoken.Hash(plane.CA.Cert); m[3] != want {
		t.Errorf("CA hash %s, want the tenant CA's %s", m[3], want)
	}
	s := &corev1.Secret{}
	if err := cl.Get(ctxT(t), client.ObjectKey{Namespace: "kube-system", Name: "bootstrap-token-" + m[1]}, s); err != nil {
		t.Fatalf("the token Secret in the tenant: %v", err)
	}
	t.Cleanup(func() { _ = cl.Delete(context.Background(), s) })
	exp, err := time.Parse(time.RFC3339, string(s.Data["expiration"]))
	if err != nil || time.Until(exp) > 31*time.Minute || time.Until(exp) < 28*time.Minute {
		t.Errorf("expiration %q", s.Data["expiration"])
	}
	if s.Type != "bootstrap.kubernetes.io/token" || string(s.Data["token-secret"]) != m[2] || string(s.Data["auth-extra-groups"]) != "system:bootstrappers:kubeadm:default-node-token" ||
		string(s.Data["usage-bootstrap-authentication"]) != "true" || string(s.Data["usage-bootstrap-signing"]) != "true" {
		t.Errorf("token Secret %s %v", s.Type, s.Data)
	}
}

func TestPauseResume(t *testing.T) {
	newTCP(t, "pr", nil)
	if _, _, err := kk(t, "pause", "pr"); err != nil {
		t.Fatal(err)
	}
	if v, ok := getTCP(t, "pr").Annotations[kamajiv1alpha1.PausedAnnotation]; !ok || v != "true" {
		t.Fatalf("annotations %v", getTCP(t, "pr").Annotations)
	}
	m := startStandIn(t, "pr")
	// A change made while paused is applied after resume: resume waits for it.
	tcp := getTCP(t, "pr")
	tcp.Spec.NetworkProfile.CertSANs = []string{"pr.example.com"}
	if err := cl.Update(ctxT(t), tcp); err != nil {
		t.Fatal(err)
	}
	out, _, err := kk(t, "resume", "pr", "--timeout", "20s")
	if err != nil || out != "pr resumed: Ready.\n" {
		t.Fatalf("resume: %v %q", err, out)
	}
	got := getTCP(t, "pr")
	if _, ok := got.Annotations[kamajiv1alpha1.PausedAnnotation]; ok || got.Status.ObservedGeneration != got.Generation || !m.saw("paused") {
		t.Fatalf("after resume: annotations %v, observed %d of %d", got.Annotations, got.Status.ObservedGeneration, got.Generation)
	}
}

func TestSleepWake(t *testing.T) {
	newTCP(t, "sw", nil)
	startStandIn(t, "sw")
	out, stderr, err := kk(t, "sleep", "sw", "--timeout", "20s")
	if err != nil || !strings.HasPrefix(out, "sw is Sleeping (it had 2 replicas") {
		t.Fatalf("sleep: %v %q %q", err, out, stderr)
	}
	tcp := getTCP(t, "sw")
	if tcp.Annotations[command.SleepReplicasAnnotation] != "2" || ptr.Deref(tcp.Spec.ControlPlane.Deployment.Replicas, -1) != 0 {
		t.Fatalf("after sleep: %v, replicas %v", tcp.Annotations, tcp.Spec.ControlPlane.Deployment.Replicas)
	}
	if s := tcp.Status.Kubernetes.Version.Status; s == nil || *s != kamajiv1alpha1.VersionSleeping {
		t.Fatalf("status %v", s)
	}
	// kubeconfig refuses a sleeping tenant.
	tenantSecrets(t, "sw")
	if _, _, err := kk(t, "kubeconfig", "sw"); err == nil || !strings.Contains(err.Error(), "is Sleeping (scaled to zero): wake it first") {
		t.Fatalf("kubeconfig of a sleeping tenant: %v", err)
	}
	out, _, err = kk(t, "wake", "sw", "--timeout", "20s")
	if err != nil || out != "sw is Ready (2 replicas).\n" {
		t.Fatalf("wake: %v %q", err, out)
	}
	tcp = getTCP(t, "sw")
	if _, ok := tcp.Annotations[command.SleepReplicasAnnotation]; ok || ptr.Deref(tcp.Spec.ControlPlane.Deployment.Replicas, -1) != 2 {
		t.Fatalf("after wake: %v, replicas %v", tcp.Annotations, tcp.Spec.ControlPlane.Deployment.Replicas)
	}
}

func TestRotate(t *testing.T) {
	newTCP(t, "rot", nil)
	tenantSecrets(t, "rot")
	m := startStandIn(t, "rot")
	before := getTCP(t, "rot").Status.Certificates
	out, _, err := kk(t, "rotate", "rot", "--timeout", "20s")
	if err != nil || !strings.HasPrefix(out, "rot's certificates and kubeconfigs are reissued; it is Ready.") || !m.saw("rotate") {
		t.Fatalf("rotate: %v %q", err, out)
	}
	if after := getTCP(t, "rot").Status.Certificates; after.APIServer.Checksum == before.APIServer.Checksum {
		t.Fatal("returned before the certificates were reissued")
	}
	out, _, err = kk(t, "rotate", "rot", "--ca", "--timeout", "20s")
	if err != nil || !strings.HasPrefix(out, "rot has a new CA; it is Ready.") || !m.saw("rotate-ca") {
		t.Fatalf("rotate --ca: %v %q", err, out)
	}
	if after := getTCP(t, "rot").Status.Certificates; after.CA.Checksum == before.CA.Checksum {
		t.Fatal("returned before the CA was replaced")
	}
}

func TestUpgrade(t *testing.T) {
	newTCP(t, "up", nil)
	out, _, err := kk(t, "upgrade", "up", "--to", "v1.35.9")
	if err == nil || err.Error() != "cannot upgrade up from v1.36.3 to v1.35.9: "+kubeversion.Check("v1.36.3", "v1.35.9").Error() || !strings.HasPrefix(out, "Upgrade policy:") {
		t.Fatalf("downgrade: %v %q", err, out)
	}
	// The apiserver has no webhook here: the refusal is the CLI's own, before any write.
	if v := getTCP(t, "up").Spec.Kubernetes.Version; v != "v1.36.3" {
		t.Fatalf("a refused upgrade wrote %s", v)
	}
	m := startStandIn(t, "up")
	out, stderr, err := kk(t, "upgrade", "up", "--to", "v1.37.2", "--timeout", "20s")
	if err != nil || !strings.HasSuffix(out, "up runs v1.37.2 and is Ready.\n") || !m.saw("upgrading") {
		t.Fatalf("upgrade: %v %q %q", err, out, stderr)
	}
	if !strings.Contains(stderr, "waiting for up to run v1.37.2: installed v1.36.3; status Upgrading; Ready=False Upgrading: rolling out v1.37.2") {
		t.Errorf("the progress did not show the rollout: %q", stderr)
	}
	tcp := getTCP(t, "up")
	if tcp.Spec.Kubernetes.Version != "v1.37.2" || tcp.Status.Kubernetes.Version.Version != "v1.37.2" {
		t.Fatalf("spec %s status %s", tcp.Spec.Kubernetes.Version, tcp.Status.Kubernetes.Version.Version)
	}
}

func TestWaitFailsWithTheCondition(t *testing.T) {
	newTCP(t, "stuck", func(tcp *kamajiv1alpha1.TenantControlPlane) {
		tcp.Status.Kubernetes.Version.Status = ptr.To(kamajiv1alpha1.VersionNotReady)
		tcp.Status.Conditions = []metav1.Condition{
			{Type: "Ready", Status: "False", Reason: "ReconcileFailed", Message: "stopped", LastTransitionTime: metav1.Now()},
			{Type: "DataStoreReady", Status: "False", Reason: "ProvisioningFailed", Message: "Access denied", LastTransitionTime: metav1.Now()},
		}
	})
	_, _, err := kk(t, "sleep", "stuck", "--timeout", "1s")
	if err == nil || err.Error() != "timed out after 1s waiting for stuck to be Sleeping: status NotReady; DataStoreReady=False ProvisioningFailed: Access denied" {
		t.Fatalf("err %v", err)
	}
}

func TestRefusals(t *testing.T) {
	newTCP(t, "guarded", nil)
	_, _, err := kk(t, "describe", "nope")
	if err == nil || err.Error() != `TenantControlPlane "nope" not found in namespace "default" (kubectl kamaji list -A lists them all)` {
		t.Fatalf("unknown TCP: %v", err)
	}

	// alice may read TCPs in default, nothing else.
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "tcp-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"kamaji.clastix.io"}, Resources: []string{"tenantcontrolplanes"}, Verbs: []string{"get", "list"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "alice"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "tcp-reader"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "alice"}}}
	for _, o := range []client.Object{role, binding} {
		if err := cl.Create(ctxT(t), o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Delete(context.Background(), o) })
	}
	alice := userKubeconfig(t, "alice")
	out, _, err := kubectlKamaji(t, alice, "list")
	if err != nil || !strings.Contains(out, "guarded") {
		t.Fatalf("alice's list: %v\n%s", err, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sleep", "guarded"}, `no permission: User "alice" cannot patch resource "tenantcontrolplanes" in API group "kamaji.clastix.io" in the namespace "default"`},
		{[]string{"list", "-A"}, `no permission: User "alice" cannot list resource "tenantcontrolplanes" in API group "kamaji.clastix.io" at the cluster scope`},
		{[]string{"kubeconfig", "guarded"}, `no permission: User "alice" cannot get resource "secrets" in API group "" in the namespace "default"`},
		{[]string{"datastores"}, `no permission: User "alice" cannot list resource "datastores" in API group "kamaji.clastix.io" at the cluster scope`},
	} {
		_, _, err := kubectlKamaji(t, alice, c.args...)
		if err == nil || err.Error() != c.want {
			t.Errorf("%v:\n got %v\nwant %s", c.args, err, c.want)
		}
	}
	// The refused sleep wrote nothing.
	if tcp := getTCP(t, "guarded"); tcp.Spec.ControlPlane.Deployment.Replicas != nil && *tcp.Spec.ControlPlane.Deployment.Replicas == 0 {
		t.Fatal("a refused sleep scaled the tenant")
	}
}

func copyFile(t *testing.T, src string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir() + "/config"
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// A tenant asleep on its own (Sleeping=True, its spec replicas kept) is woken through its
// activity Lease, server-side applied beside the manager's own applies of it.
func TestWakeIdleSleep(t *testing.T) {
	asleep := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	tcp := newTCP(t, "idle", func(tcp *kamajiv1alpha1.TenantControlPlane) {
		tcp.Status.Kubernetes.Version.Status = ptr.To(kamajiv1alpha1.VersionSleeping)
		tcp.Status.Kubernetes.Deployment.Replicas, tcp.Status.Kubernetes.Deployment.AvailableReplicas = 0, 0
		tcp.Status.Conditions = append(tcp.Status.Conditions, metav1.Condition{Type: kamajiv1alpha1.ConditionSleeping,
			Status: "True", Reason: sleep.ReasonIdle, Message: "no request for 15m", LastTransitionTime: asleep})
	})
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: sleep.LeaseName("idle")}}
	t.Cleanup(func() { _ = cl.Delete(context.Background(), lease) }) // no garbage collector here

	_, _, err := kk(t, "wake", "idle", "--replicas", "1")
	if err == nil || !strings.Contains(err.Error(), "sleeps on its own (kamaji.clastix.io/sleep-after): its replicas are its spec's") {
		t.Fatalf("wake --replicas: %v", err)
	}

	// carol may read TCPs and write Leases: what the docs say wake needs.
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "waker"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"kamaji.clastix.io"}, Resources: []string{"tenantcontrolplanes"}, Verbs: []string{"get"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create", "patch"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "carol"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "waker"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "carol"}}}
	for _, o := range []client.Object{role, binding} {
		if err := cl.Create(ctxT(t), o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Delete(context.Background(), o) })
	}
	out, stderr, err := kubectlKamaji(t, userKubeconfig(t, "carol"), "wake", "idle", "--wait=false")
	if err != nil || stderr != "Waking idle (asleep after idle time; its activity Lease is renewed).\n" || out != "idle is waking up.\n" {
		t.Fatalf("wake: %v %q %q", err, stderr, out)
	}
	if err := cl.Get(ctxT(t), client.ObjectKeyFromObject(lease), lease); err != nil {
		t.Fatal(err)
	}
	if lease.Spec.RenewTime == nil || !lease.Spec.RenewTime.After(asleep.Time) {
		t.Fatalf("renewTime %v, not after the fall asleep at %v", lease.Spec.RenewTime, asleep)
	}
	if lease.Labels[sleep.ActivityLabel] != "idle" || len(lease.OwnerReferences) != 1 || lease.OwnerReferences[0].UID != tcp.UID {
		t.Fatalf("Lease %v owners %v", lease.Labels, lease.OwnerReferences)
	}
	// The manager keeps applying the Lease as its own field manager after the CLI did.
	if err := apply.Apply(ctxT(t), cl, sleep.ActivityLease(tcp, time.Now())); err != nil {
		t.Fatalf("the manager's apply after wake: %v", err)
	}
	if got := getTCP(t, "idle"); got.Generation != tcp.Generation || len(got.Annotations) != 0 {
		t.Fatalf("wake changed the TCP: generation %d (was %d), annotations %v", got.Generation, tcp.Generation, got.Annotations)
	}
}
