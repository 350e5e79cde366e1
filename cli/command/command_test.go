package command

// Unit tests of the verbs against controller-runtime's fake client: every error path, the
// objects each verb writes, and its output. The same verbs run against a real kube-apiserver
// in cli/integration.

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	corekubeconfig "github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/kubeversion"
	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/sleep"

	"github.com/openhcp/kamaji/cli/jointoken"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// env is one fake admin cluster and, for join-command, one fake tenant.
type env struct {
	t      *testing.T
	objs   []client.Object
	funcs  interceptor.Funcs
	cl     client.WithWatch
	tenant *k8sfake.Clientset
}

func newEnv(t *testing.T, objs ...client.Object) *env {
	// Never read the user's kubeconfig: an empty one, with no context.
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kc)
	return &env{t: t, objs: objs, tenant: k8sfake.NewSimpleClientset()}
}

func (e *env) client() client.WithWatch {
	if e.cl == nil {
		e.cl = interceptor.NewClient(fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(e.objs...).
			WithStatusSubresource(&kamajiv1alpha1.TenantControlPlane{}, &kamajiv1alpha1.DataStore{}).
			WithIndex(&corev1.Event{}, "involvedObject.kind", func(o client.Object) []string { return []string{o.(*corev1.Event).InvolvedObject.Kind} }).
			WithIndex(&corev1.Event{}, "involvedObject.name", func(o client.Object) []string { return []string{o.(*corev1.Event).InvolvedObject.Name} }).
			Build(), e.funcs)
	}
	return e.cl
}

// run runs the command line and returns stdout, stderr and the error main would print.
func (e *env) run(args ...string) (string, string, error) {
	e.t.Helper()
	var out, errOut bytes.Buffer
	root := New(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, Deps{
		Client:   func(*genericclioptions.ConfigFlags) (client.Client, error) { return e.client(), nil },
		Tenant:   func([]byte) (corev1client.CoreV1Interface, error) { return e.tenant.CoreV1(), nil },
		Now:      func() time.Time { return now },
		Interval: 5 * time.Millisecond,
		Terminal: func() bool { return false },
	})
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func (e *env) tcp(name string) *kamajiv1alpha1.TenantControlPlane {
	e.t.Helper()
	tcp := &kamajiv1alpha1.TenantControlPlane{}
	if err := e.client().Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, tcp); err != nil {
		e.t.Fatal(err)
	}
	return tcp
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error on several lines: %q", err)
	}
}

// sample is a TCP in the given state, the status of its current generation.
func sample(name string, state kamajiv1alpha1.KubernetesVersionStatus, conds ...metav1.Condition) *kamajiv1alpha1.TenantControlPlane {
	tcp := &kamajiv1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), Generation: 1, CreationTimestamp: metav1.NewTime(now.Add(-time.Hour))},
		Spec: kamajiv1alpha1.TenantControlPlaneSpec{
			DataStore:    "default",
			ControlPlane: kamajiv1alpha1.ControlPlane{Service: kamajiv1alpha1.ServiceSpec{ServiceType: "ClusterIP"}},
			Kubernetes:   kamajiv1alpha1.KubernetesSpec{Version: "v1.36.3"},
		},
	}
	tcp.Status.ObservedGeneration = 1
	tcp.Status.Kubernetes.Version = kamajiv1alpha1.KubernetesVersion{Version: "v1.36.3", Status: ptr.To(state)}
	tcp.Status.ControlPlaneEndpoint = "10.96.0.7:6443"
	if len(conds) == 0 && (state == kamajiv1alpha1.VersionReady || state == kamajiv1alpha1.VersionSleeping) {
		conds = []metav1.Condition{{Type: "Ready", Status: "True", Reason: string(state)}, {Type: "TenantConfigured", Status: "True", Reason: "Configured"}}
	}
	tcp.Status.Conditions = conds
	return tcp
}

func falseCond(typ, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: "False", Reason: reason, Message: msg}
}

// adminSecret is t's admin kubeconfig Secret, its kubeconfigs signed by ca.
func adminSecret(t *testing.T, name string, ca *pki.KeyPair, keys ...string) *corev1.Secret {
	t.Helper()
	leaf, err := ca.Issue(pki.Request{CommonName: "kubernetes-admin", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := leaf.KeyPEM()
	conf, err := corekubeconfig.Build("https://10.96.0.7:6443", ca.CertPEM(), "kubernetes-admin", leaf.CertPEM(), key, name)
	if err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name + "-admin-kubeconfig"}, Data: map[string][]byte{}}
	for _, k := range keys {
		s.Data[k] = conf
	}
	return s
}

func newCA(t *testing.T) *pki.KeyPair {
	t.Helper()
	ca, err := pki.NewCA("kubernetes", time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestUnknownTenant(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{
		{"describe", "nope"}, {"kubeconfig", "nope"}, {"join-command", "nope"}, {"sleep", "nope"}, {"wake", "nope"},
		{"pause", "nope"}, {"resume", "nope"}, {"rotate", "nope"}, {"rotate", "nope", "--ca"}, {"upgrade", "nope", "--to", "v1.37.2"},
	} {
		_, _, err := e.run(append(args, "-n", "default")...)
		if err == nil || err.Error() != `TenantControlPlane "nope" not found in namespace "default" (kubectl kamaji list -A lists them all)` {
			t.Errorf("%v: %v", args, err)
		}
	}
	_, _, err := e.run("datastores", "nope")
	wantErr(t, err, `DataStore "nope" not found`)
	_, _, err = e.run("sleep")
	wantErr(t, err, "takes the name of one TenantControlPlane")
}

func TestKubeconfigRefusals(t *testing.T) {
	ca := newCA(t)
	e := newEnv(t,
		sample("provisioning", kamajiv1alpha1.VersionProvisioning, falseCond("Ready", "Provisioning", "waiting"), falseCond("DataStoreReady", "ProvisioningFailed", "etcd: permission denied")),
		sample("asleep", kamajiv1alpha1.VersionSleeping),
		sample("nosecret", kamajiv1alpha1.VersionReady, metav1.Condition{Type: "Ready", Status: "True", Reason: "Ready"}, falseCond("KubeconfigsReady", "KubeconfigsFailed", "boom")),
		sample("ready", kamajiv1alpha1.VersionReady),
		adminSecret(t, "ready", ca, "admin.conf"),
	)
	for _, verb := range []string{"kubeconfig", "join-command"} {
		_, _, err := e.run(verb, "provisioning")
		wantErr(t, err, "TenantControlPlane default/provisioning is not Ready (status Provisioning; DataStoreReady=False ProvisioningFailed: etcd: permission denied)")
		_, _, err = e.run(verb, "asleep")
		wantErr(t, err, "TenantControlPlane default/asleep is Sleeping (scaled to zero): wake it first with `kubectl kamaji wake asleep -n default`")
		_, _, err = e.run(verb, "nosecret")
		wantErr(t, err, "the admin kubeconfig Secret default/nosecret-admin-kubeconfig does not exist (KubeconfigsReady=False KubeconfigsFailed: boom)")
	}
	_, _, err := e.run("kubeconfig", "ready", "--in-cluster")
	wantErr(t, err, `Secret default/ready-admin-kubeconfig has no "admin.svc" (it holds: admin.conf)`)
	_, _, err = e.run("kubeconfig", "ready", "--merge", "--file", "x")
	wantErr(t, err, "--merge and --file are exclusive")
	_, _, err = e.run("kubeconfig", "ready", "--use")
	wantErr(t, err, "--overwrite and --use go with --merge")
}

func TestKubeconfigOutputs(t *testing.T) {
	ca := newCA(t)
	secret := adminSecret(t, "ready", ca, "admin.conf", "super-admin.conf")
	notConfigured := sample("fresh", kamajiv1alpha1.VersionReady, metav1.Condition{Type: "Ready", Status: "True", Reason: "Ready"},
		falseCond("TenantConfigured", "TenantAPIServerNotReady", "not yet"))
	e := newEnv(t, sample("ready", kamajiv1alpha1.VersionReady), secret, notConfigured, adminSecret(t, "fresh", ca, "admin.conf"))

	out, stderr, err := e.run("kubeconfig", "ready")
	if err != nil || out != string(secret.Data["admin.conf"]) || stderr != "" {
		t.Fatalf("stdout: err %v, stderr %q", err, stderr)
	}

	file := filepath.Join(t.TempDir(), "t.conf")
	if err := os.WriteFile(file, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := e.run("kubeconfig", "ready", "--super-admin", "--file", file, "--context-name", "mine"); err != nil || !strings.Contains(stderr, "Wrote ready's super-admin.conf to "+file) {
		t.Fatalf("--file: %v %q", err, stderr)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	cfg, err := clientcmd.LoadFromFile(file)
	if err != nil || cfg.CurrentContext != "mine" || cfg.Clusters["mine"].Server != "https://10.96.0.7:6443" {
		t.Fatalf("written file: %v %+v", err, cfg)
	}

	kc := os.Getenv("KUBECONFIG")
	out, _, err = e.run("kubeconfig", "ready", "--merge")
	if err != nil || out != "Context \"default/ready\" added to "+kc+": kubectl --context default/ready get ns\n" {
		t.Fatalf("--merge: %v %q", err, out)
	}
	_, _, err = e.run("kubeconfig", "ready", "--merge")
	wantErr(t, err, `your kubeconfig already has a context named "default/ready": choose another --context-name, or pass --overwrite to replace it`)
	if _, _, err := e.run("kubeconfig", "ready", "--merge", "--overwrite", "--use"); err != nil {
		t.Fatal(err)
	}
	merged, err := clientcmd.LoadFromFile(kc)
	if err != nil || merged.CurrentContext != "default/ready" || merged.AuthInfos["default/ready"] == nil {
		t.Fatalf("merged file: %v %+v", err, merged)
	}

	_, stderr, err = e.run("kubeconfig", "fresh")
	if err != nil || !strings.Contains(stderr, "Warning: fresh is not configured yet (TenantConfigured=False TenantAPIServerNotReady: not yet)") {
		t.Fatalf("warning: %v %q", err, stderr)
	}
}

func forbidden(verb, resource string) error {
	return apierrors.NewForbidden(schema.GroupResource{Group: "kamaji.clastix.io", Resource: resource}, "ready",
		errors.New(`User "bob" cannot `+verb+` resource "`+resource+`" in API group "kamaji.clastix.io" in the namespace "default"`))
}

func TestNoPermission(t *testing.T) {
	e := newEnv(t, sample("ready", kamajiv1alpha1.VersionReady))
	e.funcs.Patch = func(context.Context, client.WithWatch, client.Object, client.Patch, ...client.PatchOption) error {
		return forbidden("patch", "tenantcontrolplanes")
	}
	e.funcs.List = func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
		return forbidden("list", "tenantcontrolplanes")
	}
	want := `no permission: User "bob" cannot patch resource "tenantcontrolplanes" in API group "kamaji.clastix.io" in the namespace "default"`
	for _, args := range [][]string{{"sleep", "ready"}, {"pause", "ready"}, {"rotate", "ready"}, {"upgrade", "ready", "--to", "v1.37.2"}} {
		_, _, err := e.run(args...)
		if err == nil || err.Error() != want {
			t.Errorf("%v: %v", args, err)
		}
	}
	_, _, err := e.run("list", "-A")
	wantErr(t, err, `no permission: User "bob" cannot list resource "tenantcontrolplanes"`)

	g := newEnv(t)
	g.funcs.Get = func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
		return forbidden("get", "tenantcontrolplanes")
	}
	_, _, err = g.run("describe", "ready")
	wantErr(t, err, `no permission: User "bob" cannot get resource "tenantcontrolplanes"`)
}

func TestOperatorNotInstalled(t *testing.T) {
	e := newEnv(t)
	e.funcs.List = func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
		return &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "kamaji.clastix.io", Kind: "TenantControlPlane"}, SearchedVersions: []string{"v1alpha1"}}
	}
	_, _, err := e.run("list")
	wantErr(t, err, "this cluster does not serve kamaji.clastix.io/v1alpha1: is the kamaji operator installed (check --context)?")
	e.funcs.List = func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
		return apierrors.NewUnauthorized("Unauthorized")
	}
	e.cl = nil
	_, _, err = e.run("datastores")
	wantErr(t, err, "the cluster refused your credentials (401 Unauthorized)")
}

func TestSleepAndWakeWrite(t *testing.T) {
	e := newEnv(t, sample("t", kamajiv1alpha1.VersionReady))
	out, _, err := e.run("sleep", "t", "--wait=false")
	if err != nil || out != "t scaled to zero (was 2 replicas).\n" {
		t.Fatalf("sleep: %v %q", err, out)
	}
	tcp := e.tcp("t")
	if tcp.Annotations[SleepReplicasAnnotation] != "2" || ptr.Deref(tcp.Spec.ControlPlane.Deployment.Replicas, -1) != 0 {
		t.Fatalf("after sleep: annotations %v replicas %v", tcp.Annotations, tcp.Spec.ControlPlane.Deployment.Replicas)
	}
	// Sleeping a second time keeps the recorded replicas.
	if _, _, err := e.run("sleep", "t", "--wait=false"); err != nil || e.tcp("t").Annotations[SleepReplicasAnnotation] != "2" {
		t.Fatalf("second sleep: %v %v", err, e.tcp("t").Annotations)
	}
	_, stderr, err := e.run("wake", "t", "--wait=false")
	if err != nil || !strings.Contains(stderr, "Scaling t to 2 replicas (as before sleep)") {
		t.Fatalf("wake: %v %q", err, stderr)
	}
	tcp = e.tcp("t")
	if _, ok := tcp.Annotations[SleepReplicasAnnotation]; ok || ptr.Deref(tcp.Spec.ControlPlane.Deployment.Replicas, -1) != 2 {
		t.Fatalf("after wake: annotations %v replicas %v", tcp.Annotations, tcp.Spec.ControlPlane.Deployment.Replicas)
	}

	// No annotation (scaled to zero by hand): the default, or --replicas.
	zero := sample("z", kamajiv1alpha1.VersionSleeping)
	zero.Spec.ControlPlane.Deployment.Replicas = ptr.To[int32](0)
	bad := sample("bad", kamajiv1alpha1.VersionSleeping)
	bad.Spec.ControlPlane.Deployment.Replicas = ptr.To[int32](0)
	bad.Annotations = map[string]string{SleepReplicasAnnotation: "many"}
	e = newEnv(t, zero, bad)
	if _, stderr, err := e.run("wake", "z", "--wait=false"); err != nil || !strings.Contains(stderr, "Scaling z to 2 replicas (no replicas recorded by sleep: the default)") {
		t.Fatalf("wake default: %v %q", err, stderr)
	}
	_, _, err = e.run("wake", "bad", "--wait=false")
	wantErr(t, err, `annotation kamaji.clastix.io/replicas-before-sleep="many" on default/bad is not a replica count: pass --replicas`)
	if _, _, err := e.run("wake", "bad", "--wait=false", "--replicas", "3"); err != nil || ptr.Deref(e.tcp("bad").Spec.ControlPlane.Deployment.Replicas, -1) != 3 {
		t.Fatalf("--replicas: %v", err)
	}
	_, _, err = e.run("wake", "bad", "--replicas", "0")
	wantErr(t, err, "--replicas must be at least 1")
}

// idleAsleep is a TCP asleep on its own: spec replicas unchanged, Sleeping=True Idle since at.
func idleAsleep(name string, at time.Time) *kamajiv1alpha1.TenantControlPlane {
	tcp := sample(name, kamajiv1alpha1.VersionSleeping)
	tcp.Annotations = map[string]string{kamajiv1alpha1.SleepAfterAnnotation: "15m"}
	tcp.Spec.ControlPlane.Deployment.Replicas = ptr.To[int32](3)
	tcp.Status.Conditions = append(tcp.Status.Conditions, metav1.Condition{
		Type: kamajiv1alpha1.ConditionSleeping, Status: "True", Reason: sleep.ReasonIdle, LastTransitionTime: metav1.NewTime(at)})
	return tcp
}

func (e *env) lease(name string) *coordinationv1.Lease {
	e.t.Helper()
	l := &coordinationv1.Lease{}
	if err := e.client().Get(context.Background(), client.ObjectKey{Namespace: "default", Name: sleep.LeaseName(name)}, l); err != nil {
		e.t.Fatal(err)
	}
	return l
}

func TestWakeIdleSleep(t *testing.T) {
	e := newEnv(t, idleAsleep("t", now.Add(-10*time.Minute)))
	_, _, err := e.run("wake", "t", "--replicas", "1")
	wantErr(t, err, "TenantControlPlane default/t sleeps on its own (kamaji.clastix.io/sleep-after): its replicas are its spec's (3 replicas); wake it without --replicas")
	if err := e.client().Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "t-activity"}, &coordinationv1.Lease{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a refused wake wrote the Lease: %v", err)
	}

	out, stderr, err := e.run("wake", "t", "--wait=false")
	if err != nil || stderr != "Waking t (asleep after idle time; its activity Lease is renewed).\n" || out != "t is waking up.\n" {
		t.Fatalf("wake: %v %q %q", err, stderr, out)
	}
	// The Lease the manager writes, renewed now; the TCP itself untouched.
	l := e.lease("t")
	if l.Spec.RenewTime == nil || !l.Spec.RenewTime.Time.Equal(now) || ptr.Deref(l.Spec.HolderIdentity, "") != "kamaji" ||
		l.Labels[sleep.ActivityLabel] != "t" || len(l.OwnerReferences) != 1 || l.OwnerReferences[0].UID != "uid-t" {
		t.Fatalf("Lease %+v", l)
	}
	if tcp := e.tcp("t"); ptr.Deref(tcp.Spec.ControlPlane.Deployment.Replicas, -1) != 3 || len(tcp.Annotations) != 1 {
		t.Fatalf("wake changed the TCP: %v %v", tcp.Spec.ControlPlane.Deployment.Replicas, tcp.Annotations)
	}

	// A local clock behind the cluster's still renews after the fall asleep; waking is renewed too.
	behind := idleAsleep("b", now.Add(time.Minute))
	waking := idleAsleep("w", now.Add(-time.Minute))
	waking.Status.Conditions[2].Status, waking.Status.Conditions[2].Reason = "False", sleep.ReasonWaking
	e = newEnv(t, behind, waking)
	if _, _, err := e.run("wake", "b", "--wait=false"); err != nil || !e.lease("b").Spec.RenewTime.Time.After(now.Add(time.Minute)) {
		t.Fatalf("wake with a clock behind: %v %v", err, e.lease("b").Spec.RenewTime)
	}
	if _, stderr, err := e.run("wake", "w", "--wait=false"); err != nil || stderr != "Waking w (already waking from idle sleep; its activity Lease is renewed).\n" {
		t.Fatalf("wake of a waking tenant: %v %q", err, stderr)
	}

	// Waits for Ready as for a tenant scaled up (the stand-in manager says Ready at once).
	e = newEnv(t, idleAsleep("r", now.Add(-time.Minute)))
	controller(e)
	if out, _, err := e.run("wake", "r", "--timeout", "10s"); err != nil || out != "r is Ready (3 replicas).\n" {
		t.Fatalf("wake and wait: %v %q", err, out)
	}

	// Paused: the manager would not wake it.
	paused := idleAsleep("p", now.Add(-time.Minute))
	paused.Annotations[kamajiv1alpha1.PausedAnnotation] = "true"
	e = newEnv(t, paused)
	_, _, err = e.run("wake", "p")
	wantErr(t, err, "TenantControlPlane default/p is paused (kamaji.clastix.io/paused): the manager would not wake it")
}

// sleep on a tenant asleep on its own still scales its spec to zero, so that it stays asleep.
func TestSleepIdleSleep(t *testing.T) {
	e := newEnv(t, idleAsleep("t", now.Add(-10*time.Minute)))
	out, _, err := e.run("sleep", "t", "--wait=false")
	if err != nil || out != "t scaled to zero (was 3 replicas).\n" {
		t.Fatalf("sleep: %v %q", err, out)
	}
	if tcp := e.tcp("t"); tcp.Annotations[SleepReplicasAnnotation] != "3" || ptr.Deref(tcp.Spec.ControlPlane.Deployment.Replicas, -1) != 0 {
		t.Fatalf("after sleep: annotations %v replicas %v", tcp.Annotations, tcp.Spec.ControlPlane.Deployment.Replicas)
	}
}

func TestPausedRefusesWaitingVerbs(t *testing.T) {
	paused := sample("p", kamajiv1alpha1.VersionReady)
	paused.Annotations = map[string]string{kamajiv1alpha1.PausedAnnotation: "true"}
	e := newEnv(t, paused)
	for _, args := range [][]string{{"sleep", "p"}, {"rotate", "p"}, {"upgrade", "p", "--to", "v1.37.2"}} {
		_, _, err := e.run(args...)
		wantErr(t, err, "TenantControlPlane default/p is paused (kamaji.clastix.io/paused)")
		wantErr(t, err, "`kubectl kamaji resume p -n default` first, or --wait=false")
	}
	if tcp := e.tcp("p"); tcp.Spec.ControlPlane.Deployment.Replicas != nil || tcp.Spec.Kubernetes.Version != "v1.36.3" || len(tcp.Annotations) != 1 {
		t.Fatalf("a refused verb changed the TCP: %+v %v", tcp.Spec, tcp.Annotations)
	}
	if _, _, err := e.run("sleep", "p", "--wait=false"); err != nil {
		t.Fatalf("--wait=false on a paused TCP: %v", err)
	}
}

// controller makes the fake answer like the manager: a Get of a TCP returns it with the status
// the core would compute for its spec (Sleeping at zero replicas, Ready with the spec's version
// otherwise), for the current generation.
func controller(e *env) {
	e.funcs.Get = func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if err := c.Get(ctx, key, obj, opts...); err != nil {
			return err
		}
		tcp, ok := obj.(*kamajiv1alpha1.TenantControlPlane)
		if !ok {
			return nil
		}
		state := kamajiv1alpha1.VersionReady
		if ptr.Deref(tcp.Spec.ControlPlane.Deployment.Replicas, 2) == 0 {
			state = kamajiv1alpha1.VersionSleeping
		}
		tcp.Status.Kubernetes.Version = kamajiv1alpha1.KubernetesVersion{Version: tcp.Spec.Kubernetes.Version, Status: ptr.To(state)}
		tcp.Status.ObservedGeneration = tcp.Generation
		if _, asked := tcp.Annotations[kamajiv1alpha1.RotateCertificatesAnnotation]; asked {
			delete(tcp.Annotations, kamajiv1alpha1.RotateCertificatesAnnotation)
			tcp.Status.Certificates.APIServer.Checksum = "after"
		}
		return nil
	}
}

func TestWaitingVerbsReachTheirState(t *testing.T) {
	ready := sample("t", kamajiv1alpha1.VersionReady)
	ready.Status.Certificates.APIServer.Checksum = "before"
	e := newEnv(t, ready)
	controller(e)
	out, _, err := e.run("sleep", "t", "--timeout", "10s")
	if err != nil || out != "t is Sleeping (it had 2 replicas: `kubectl kamaji wake t -n default` brings them back).\n" {
		t.Fatalf("sleep: %v %q", err, out)
	}
	if out, _, err = e.run("wake", "t", "--timeout", "10s"); err != nil || out != "t is Ready (2 replicas).\n" {
		t.Fatalf("wake: %v %q", err, out)
	}
	if out, _, err = e.run("rotate", "t", "--timeout", "10s"); err != nil || !strings.Contains(out, "t's certificates and kubeconfigs are reissued; it is Ready.") {
		t.Fatalf("rotate: %v %q", err, out)
	}
	out, _, err = e.run("upgrade", "t", "--to", "1.37.2", "--timeout", "10s")
	if err != nil || !strings.HasPrefix(out, "Upgrade policy: a tenant moves one minor version at a time") ||
		!strings.Contains(out, "t: v1.36.3 -> v1.37.2: the next minor: allowed.\n") || !strings.HasSuffix(out, "t runs v1.37.2 and is Ready.\n") {
		t.Fatalf("upgrade: %v %q", err, out)
	}
	if out, _, err = e.run("upgrade", "t", "--to", "v1.37.2"); err != nil || !strings.HasSuffix(out, "t already runs v1.37.2.\n") {
		t.Fatalf("upgrade again: %v %q", err, out)
	}
}

func TestWaitTimeoutSaysWhy(t *testing.T) {
	stuck := sample("t", kamajiv1alpha1.VersionNotReady, falseCond("Ready", "ReconcileFailed", "stopped"),
		falseCond("DataStoreReady", "ProvisioningFailed", "etcd: permission denied"))
	e := newEnv(t, stuck)
	_, stderr, err := e.run("sleep", "t", "--timeout", "60ms")
	want := "timed out after 60ms waiting for t to be Sleeping: status NotReady; DataStoreReady=False ProvisioningFailed: etcd: permission denied"
	if err == nil || err.Error() != want {
		t.Fatalf("err %v\nwant %s", err, want)
	}
	if stderr != "waiting for t to be Sleeping: status NotReady; DataStoreReady=False ProvisioningFailed: etcd: permission denied\n" {
		t.Fatalf("progress %q", stderr)
	}
}

func TestPauseResume(t *testing.T) {
	e := newEnv(t, sample("t", kamajiv1alpha1.VersionReady))
	out, _, err := e.run("pause", "t")
	if err != nil || !strings.HasPrefix(out, "t is paused") || e.tcp("t").Annotations[kamajiv1alpha1.PausedAnnotation] != "true" {
		t.Fatalf("pause: %v %q %v", err, out, e.tcp("t").Annotations)
	}
	if out, _, _ := e.run("pause", "t"); out != "t is already paused.\n" {
		t.Errorf("pause again: %q", out)
	}
	out, _, err = e.run("resume", "t", "--timeout", "10s")
	if _, still := e.tcp("t").Annotations[kamajiv1alpha1.PausedAnnotation]; err != nil || out != "t resumed: Ready.\n" || still {
		t.Fatalf("resume: %v %q paused=%v", err, out, still)
	}
	if out, _, _ := e.run("resume", "t"); out != "t is not paused.\n" {
		t.Errorf("resume again: %q", out)
	}
}

func TestRotateWrites(t *testing.T) {
	ca := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "t-ca"}}
	e := newEnv(t, sample("t", kamajiv1alpha1.VersionReady), ca, sample("noca", kamajiv1alpha1.VersionReady))
	if _, _, err := e.run("rotate", "t", "--wait=false"); err != nil || e.tcp("t").Annotations[kamajiv1alpha1.RotateCertificatesAnnotation] != "2026-11-23T12:00:00Z" {
		t.Fatalf("rotate: %v %v", err, e.tcp("t").Annotations)
	}
	out, _, err := e.run("rotate", "t", "--ca", "--wait=false")
	got := &corev1.Secret{}
	_ = e.client().Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "t-ca"}, got)
	if err != nil || got.Annotations[kamajiv1alpha1.RotateCertificatesAnnotation] == "" || out != "Rotation of t's CA requested (Secret t-ca).\n" {
		t.Fatalf("rotate --ca: %v %q %v", err, out, got.Annotations)
	}
	_, _, err = e.run("rotate", "noca", "--ca")
	wantErr(t, err, "the CA Secret default/noca-ca does not exist (CertificatesReady not reported)")
}

func TestUpgradeRefusals(t *testing.T) {
	old := sample("old", kamajiv1alpha1.VersionReady)
	old.Spec.Kubernetes.Version, old.Status.Kubernetes.Version.Version = "v1.35.4", "v1.35.4"
	asleep := sample("asleep", kamajiv1alpha1.VersionSleeping)
	asleep.Spec.ControlPlane.Deployment.Replicas = ptr.To[int32](0)
	e := newEnv(t, old, sample("cur", kamajiv1alpha1.VersionReady), asleep)
	// The reasons are the operator's policy (core/kubeversion), word for word.
	policy := func(from, to string) string { return kubeversion.Check(from, to).Error() }
	for _, c := range []struct{ name, to, err string }{
		{"old", "v1.37.2", "cannot upgrade old from v1.35.4 to v1.37.2: " + policy("v1.35.4", "v1.37.2")},
		{"cur", "v1.35.9", "cannot upgrade cur from v1.36.3 to v1.35.9: " + policy("v1.36.3", "v1.35.9")},
		{"cur", "v1.99.0", "cannot upgrade cur from v1.36.3 to v1.99.0: " + policy("v1.36.3", "v1.99.0")},
		{"cur", "latest", "cannot upgrade cur from v1.36.3 to latest: " + policy("v1.36.3", "latest")},
		{"asleep", "v1.37.2", "TenantControlPlane default/asleep is Sleeping: a version is installed by running it"},
	} {
		out, _, err := e.run("upgrade", c.name, "--to", c.to)
		wantErr(t, err, c.err)
		if !strings.HasPrefix(out, "Upgrade policy:") {
			t.Errorf("%s: the policy was not explained first: %q", c.name, out)
		}
	}
	for _, c := range []struct{ from, to string }{{"v1.35.4", "v1.37.2"}, {"v1.36.3", "v1.35.9"}, {"v1.36.3", "v1.99.0"}} {
		if kubeversion.Check(c.from, c.to) == nil {
			t.Errorf("the policy accepts %s -> %s: pick another refused case", c.from, c.to)
		}
	}
	if v := e.tcp("old").Spec.Kubernetes.Version; v != "v1.35.4" {
		t.Fatalf("a refused upgrade changed the version to %s", v)
	}
	_, _, err := e.run("upgrade", "cur")
	wantErr(t, err, "--to VERSION is required")
	if out, _, err := e.run("upgrade", "old", "--to", "v1.36.3", "--wait=false"); err != nil || e.tcp("old").Spec.Kubernetes.Version != "v1.36.3" || !strings.HasSuffix(out, "old: version set to v1.36.3; the rollout runs.\n") {
		t.Fatalf("allowed upgrade: %v %q", err, out)
	}
}

func TestJoinCommand(t *testing.T) {
	ca := newCA(t)
	e := newEnv(t, sample("t", kamajiv1alpha1.VersionReady), adminSecret(t, "t", ca, "admin.conf", "super-admin.conf"))
	out, _, err := e.run("join-command", "t", "--ttl", "1h")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^kubeadm join 10\.96\.0\.7:6443 --token ([a-z0-9]{6})\.([a-z0-9]{16}) --discovery-token-ca-cert-hash (sha256:[0-9a-f]{64})\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("printed %q", out)
	}
	if m[3] != jointoken.Hash(ca.Cert) {
		t.Errorf("hash %s, want the tenant CA's %s", m[3], jointoken.Hash(ca.Cert))
	}
	s, err := e.tenant.CoreV1().Secrets("kube-system").Get(context.Background(), "bootstrap-token-"+m[1], metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(s.Data["token-secret"]) != m[2] || string(s.Data["expiration"]) != "2026-11-23T13:00:00Z" || string(s.Data["auth-extra-groups"]) != jointoken.NodeGroup || s.Type != "bootstrap.kubernetes.io/token" {
		t.Errorf("token Secret %+v", s)
	}

	e.tenant.PrependReactor("create", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "", errors.New(`User "kubernetes-admin" cannot create resource "secrets" in API group "" in the namespace "kube-system"`))
	})
	_, _, err = e.run("join-command", "t")
	wantErr(t, err, `creating the bootstrap token in tenant t: no permission: User "kubernetes-admin" cannot create resource "secrets" in API group "" in the namespace "kube-system" (admin.conf needs the tenant's kubeadm:cluster-admins binding; --super-admin does not)`)
	_, _, err = e.run("join-command", "t", "--ttl", "-1h")
	wantErr(t, err, "--ttl must not be negative")
}

func TestListAndDataStores(t *testing.T) {
	ds := &kamajiv1alpha1.DataStore{
		ObjectMeta: metav1.ObjectMeta{Name: "default", CreationTimestamp: metav1.NewTime(now.Add(-24 * time.Hour))},
		Spec:       kamajiv1alpha1.DataStoreSpec{Driver: "etcd", Endpoints: []string{"e:2379"}},
		Status:     kamajiv1alpha1.DataStoreStatus{UsedBy: []string{"default/a"}, Plugin: &kamajiv1alpha1.PluginStatus{Name: "etcd", Version: "v0.3.0"}},
	}
	other := sample("b", kamajiv1alpha1.VersionReady)
	other.Namespace = "team-b"
	e := newEnv(t, sample("a", kamajiv1alpha1.VersionReady), other, ds)
	out, _, err := e.run("list")
	if err != nil || !strings.HasPrefix(out, "NAME ") || !strings.Contains(out, "\na    ") || strings.Contains(out, "team-b") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, _, err = e.run("list", "-A", "-o", "json")
	var l struct {
		Items []kamajiv1alpha1.TenantControlPlane
	}
	if err != nil || json.Unmarshal([]byte(out), &l) != nil || len(l.Items) != 2 || l.Items[1].Namespace != "team-b" {
		t.Fatalf("list -A -o json: %v\n%s", err, out)
	}
	out, stderr, err := e.run("list", "-n", "empty")
	if err != nil || out != "" || stderr != "No TenantControlPlanes found in namespace empty.\n" {
		t.Fatalf("empty: %v %q %q", err, out, stderr)
	}
	_, _, err = e.run("list", "-o", "name")
	wantErr(t, err, `unknown output format "name"`)
	out, _, err = e.run("datastores")
	if err != nil || !strings.Contains(out, "default   etcd     Unknown   etcd@v0.3.0   1 ") {
		t.Fatalf("datastores: %v\n%s", err, out)
	}
}

func TestDescribeDegradesPerSection(t *testing.T) {
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "default", Name: "t.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "TenantControlPlane", Name: "t"},
		Type:           "Warning", Reason: "ProvisioningFailed", Message: "etcd said no", LastTimestamp: metav1.NewTime(now.Add(-time.Minute)),
	}
	e := newEnv(t, sample("t", kamajiv1alpha1.VersionReady), ev)
	e.funcs.Get = func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if key.Name == "t-ca" {
			return apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, key.Name, errors.New(`User "bob" cannot get resource "secrets" in API group "" in the namespace "default"`))
		}
		return c.Get(ctx, key, obj, opts...)
	}
	out, _, err := e.run("describe", "t")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Name:        t\n",
		`  ! Secret t-ca: no permission: User "bob" cannot get resource "secrets" in API group "" in the namespace "default"`,
		"  ! Secret t-api-server-certificate: not created yet",
		"  Error:   ! DataStore default not found",
		"60s         Warning   ProvisioningFailed   etcd said no",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("describe lacks %q:\n%s", want, out)
		}
	}
}

func TestHelpAndCompletion(t *testing.T) {
	e := newEnv(t, sample("alpha", kamajiv1alpha1.VersionReady), sample("beta", kamajiv1alpha1.VersionReady))
	root := New(genericiooptions.NewTestIOStreamsDiscard(), Deps{})
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help", "completion", "version":
			continue
		}
		if c.Example == "" || c.Long == "" || !strings.Contains(c.Example, "kubectl kamaji "+c.Name()) {
			t.Errorf("%s has no example of itself or no long help", c.Name())
		}
	}
	if !strings.Contains(root.Long, "migrate") {
		t.Error("the help does not list migrate among the verbs that wait")
	}
	out, _, err := e.run("__complete", "sleep", "")
	if err != nil || !strings.HasPrefix(out, "alpha\nbeta\n") {
		t.Fatalf("completion of names: %v %q", err, out)
	}
	out, _, err = e.run("completion", "bash")
	if err != nil || !strings.Contains(out, "__start_kubectl-kamaji") {
		t.Fatalf("completion bash: %v %.200s", err, out)
	}
}

func TestPatchRetriesOnConflict(t *testing.T) {
	e := newEnv(t, sample("t", kamajiv1alpha1.VersionReady))
	patches := 0
	e.funcs.Patch = func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
		patches++
		body, _ := patch.Data(obj)
		if !strings.Contains(string(body), `"resourceVersion"`) {
			t.Errorf("a patch without the resourceVersion it was computed from: %s", body)
		}
		if patches == 1 {
			// Someone else wrote meanwhile: the replicas changed to 3.
			cur := &kamajiv1alpha1.TenantControlPlane{}
			_ = c.Get(ctx, client.ObjectKeyFromObject(obj), cur)
			cur.Spec.ControlPlane.Deployment.Replicas = ptr.To[int32](3)
			if err := c.Update(ctx, cur); err != nil {
				t.Fatal(err)
			}
			return apierrors.NewConflict(schema.GroupResource{Group: "kamaji.clastix.io", Resource: "tenantcontrolplanes"}, "t", errors.New("the object has been modified"))
		}
		return c.Patch(ctx, obj, patch, opts...)
	}
	if _, _, err := e.run("sleep", "t", "--wait=false"); err != nil {
		t.Fatal(err)
	}
	// The second attempt was computed from the fresh object: it remembers 3 replicas, not 2.
	if tcp := e.tcp("t"); patches != 2 || tcp.Annotations[SleepReplicasAnnotation] != "3" || *tcp.Spec.ControlPlane.Deployment.Replicas != 0 {
		t.Fatalf("%d patches, annotations %v, replicas %v", patches, tcp.Annotations, tcp.Spec.ControlPlane.Deployment.Replicas)
	}
}

func TestPolicyText(t *testing.T) {
	p := PolicyText()
	for _, want := range []string{"one minor version at a time", "never goes down", kubeversion.Window(), fmt.Sprintf("newer than v1.%d are refused", kubeversion.NewestMinor)} {
		if !strings.Contains(p, want) {
			t.Errorf("policy text lacks %q: %s", want, p)
		}
	}
	for _, c := range [][3]string{
		{"v1.36.3", "v1.37.2", "the next minor: allowed"},
		{"v1.37.1", "v1.37.2", "a patch release of the same minor: allowed"},
		{"v1.37.2", "v1.37.1", "an older patch of the same minor: allowed"},
		{"v1.37.2", "v1.37.2", "the same version"},
	} {
		if got := upgradeStep(c[0], c[1]); got != c[2] {
			t.Errorf("upgradeStep(%s, %s) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}
