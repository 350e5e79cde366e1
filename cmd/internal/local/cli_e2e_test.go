package local_test

// kubectl-kamaji end to end: the plugin built from cli/, found by the real kubectl on its PATH
// and run as `kubectl kamaji`, against a tenant of its own on the local plane with the real
// manager: every verb, and what a user does with what it gives (kubectl with the merged
// context, kubeadm join --dry-run with the printed line).

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/tenantpki"

	"github.com/openhcp/kamaji/cmd/internal/local"
)

func init() { registerPlaneSubtest("kubectl kamaji: every verb against a real tenant", testCLI) }

// cliReplicasAnnotation is the CLI's memory of a slept tenant's replicas
// (cli/command.SleepReplicasAnnotation; the cmd module does not import the cli module).
const cliReplicasAnnotation = "kamaji.clastix.io/replicas-before-sleep"

// kamajiCLI runs `kubectl kamaji` with the plugin on kubectl's PATH and the user's kubeconfig.
type kamajiCLI struct {
	kubectl, path, kubeconfig string
}

// run runs `kubectl kamaji ARGS --kubeconfig ...` and returns stdout, stderr and the error.
func (k *kamajiCLI) run(timeout time.Duration, args ...string) (string, string, error) {
	c, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(c, k.kubectl, append(append([]string{"kamaji"}, args...), "--kubeconfig", k.kubeconfig)...)
	cmd.Env = append(os.Environ(), "PATH="+k.path)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

func (k *kamajiCLI) ok(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	out, errOut, err := k.run(timeout, args...)
	if err != nil {
		t.Fatalf("kubectl kamaji %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// fails runs a verb that must fail with one line on stderr containing want.
func (k *kamajiCLI) fails(t *testing.T, want string, args ...string) {
	t.Helper()
	out, errOut, err := k.run(time.Minute, args...)
	line := strings.TrimSpace(errOut)
	if err == nil || strings.Count(line, "\n") != 0 || !strings.HasPrefix(line, "error: ") || !strings.Contains(line, want) {
		t.Fatalf("kubectl kamaji %s: %v, want one line with %q\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, want, out, errOut)
	}
}

func testCLI(t *testing.T, e *e2e) {
	const name = "e2e-cli"
	ensurePreviousBins(t, previousKubeVersion)
	start := time.Now()
	step := func(what string) { t.Logf("%5.1fs %s", time.Since(start).Seconds(), what) }

	// The plugin, where kubectl looks for plugins; a user kubeconfig of its own (--merge
	// writes to it), a copy of the plane's admin kubeconfig.
	k := e.kamajiCLI(t)
	userConf := filepath.Join(t.TempDir(), "config")
	data, err := os.ReadFile(filepath.Join(e.state, "admin.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(userConf, data, 0o600); err != nil {
		t.Fatal(err)
	}
	k.kubeconfig = userConf
	kubectl := func(args ...string) (string, error) {
		out, err := exec.Command(e.kubectl, append([]string{"--kubeconfig", userConf, "--request-timeout=10s"}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}

	tcp := local.SampleTCP(name, "default")
	tcp.Spec.Kubernetes.Version = previousKubeVersion
	if err := e.cl.Create(ctx(t), tcp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.deleteTCP(t, name) })
	e.waitStatus(t, name, kamajiv1alpha1.VersionReady)
	// admin.conf is bound to cluster-admin by the cluster-admins phase, inside the tenant.
	eventually(t, name+" TenantConfigured", func() error {
		if c := findCondition(e.tcp(t, name).Status.Conditions, kamajiv1alpha1.ConditionTenantConfigured); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("%+v", c)
		}
		return nil
	})
	endpoint := e.tcp(t, name).Status.ControlPlaneEndpoint
	step(name + " Ready on " + previousKubeVersion + " at " + endpoint)

	t.Run("list, datastores and describe show the tenant", func(t *testing.T) {
		out := k.ok(t, time.Minute, "list")
		if !regexp.MustCompile(`(?m)^` + name + `\s+Ready\s+` + regexp.QuoteMeta(previousKubeVersion) + `\s+` + regexp.QuoteMeta(endpoint) + `\s+default\s`).MatchString(out) {
			t.Errorf("list:\n%s", out)
		}
		var l struct {
			Items []kamajiv1alpha1.TenantControlPlane
		}
		if err := json.Unmarshal([]byte(k.ok(t, time.Minute, "list", "-A", "-o", "json")), &l); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, i := range l.Items {
			names = append(names, i.Namespace+"/"+i.Name)
		}
		for _, want := range []string{"default/tenant-00", "default/tenant-01", "default/" + name} {
			if !slices.Contains(names, want) {
				t.Errorf("list -A -o json: %v, without %s", names, want)
			}
		}
		out = k.ok(t, time.Minute, "datastores", "-o", "wide")
		if !regexp.MustCompile(`(?m)^default\s+etcd\s+True\s+\S+@\S+\s+\d+\s`).MatchString(out) || !strings.Contains(out, "default/"+name) {
			t.Errorf("datastores:\n%s", out)
		}
		out = k.ok(t, time.Minute, "describe", name)
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`(?m)^Status:\s+Ready$`),
			regexp.MustCompile(`(?m)^  ` + name + `-ca\s+ca\.crt\s+\S+.*\s+in \d+y(\d+d)?$`),
			regexp.MustCompile(`(?m)^  ` + name + `-api-server-certificate\s+apiserver\.crt\s+kube-apiserver\s`),
			regexp.MustCompile(`(?m)^  ` + name + `-admin-kubeconfig\s+admin\.conf\s+kubernetes-admin \(kubeadm:cluster-admins\)\s`),
			regexp.MustCompile(`(?m)^  Driver:\s+etcd$`),
			regexp.MustCompile(`(?m)^  Schema:\s+t_default_e2e_cli_[0-9a-f]+$`),
		} {
			if !want.MatchString(out) {
				t.Errorf("describe does not match %s:\n%s", want, out)
			}
		}
		if strings.Contains(out, "! ") {
			t.Errorf("describe reports a part it could not read:\n%s", out)
		}
	})

	t.Run("kubeconfig --merge, then kubectl with the new context", func(t *testing.T) {
		out := k.ok(t, time.Minute, "kubeconfig", name, "--merge", "--context-name", name)
		if !strings.Contains(out, `Context "`+name+`" added to `+userConf) {
			t.Errorf("merge: %s", out)
		}
		got, err := kubectl("--context", name, "get", "ns", "-o", "name")
		if err != nil || !strings.Contains(got, "namespace/kube-system") {
			t.Fatalf("kubectl --context %s get ns: %v\n%s", name, err, got)
		}
		if got, err := kubectl("--context", name, "auth", "whoami", "-o", "jsonpath={.status.userInfo.groups}"); err != nil || !strings.Contains(got, "kubeadm:cluster-admins") {
			t.Errorf("merged admin.conf: %v %s", err, got)
		}
		file := filepath.Join(t.TempDir(), "super.conf")
		k.ok(t, time.Minute, "kubeconfig", name, "--super-admin", "--file", file)
		who, err := exec.Command(e.kubectl, "--kubeconfig", file, "auth", "whoami", "-o", "jsonpath={.status.userInfo.groups}").CombinedOutput()
		if err != nil || !strings.Contains(string(who), "system:masters") {
			t.Errorf("super-admin.conf: %v %s", err, who)
		}
		k.fails(t, `already has a context named "`+name+`"`, "kubeconfig", name, "--merge", "--context-name", name)
	})

	t.Run("pause and resume", func(t *testing.T) {
		k.ok(t, time.Minute, "pause", name)
		if _, ok := e.tcp(t, name).Annotations[kamajiv1alpha1.PausedAnnotation]; !ok {
			t.Fatal("not paused")
		}
		// A change made while paused waits for resume.
		gen := e.patchTCP(t, name, func(tcp *kamajiv1alpha1.TenantControlPlane) {
			tcp.Spec.NetworkProfile.CertSANs = append(tcp.Spec.NetworkProfile.CertSANs, "cli-e2e.kamaji.local")
		})
		metrics := e.managerMetricsURL(t)
		eventually(t, "the manager to be idle", func() error { return managerIdle(metrics) })
		if got := e.tcp(t, name).Status.ObservedGeneration; got >= gen {
			t.Fatalf("paused tenant observed generation %d", got)
		}
		k.fails(t, "is paused", "sleep", name)
		k.ok(t, 3*time.Minute, "resume", name, "--timeout", "2m")
		tcp := e.tcp(t, name)
		if tcp.Status.ObservedGeneration < gen || !slices.Contains(e.certSecretSANs(t, name), "cli-e2e.kamaji.local") {
			t.Fatalf("after resume: observed %d of %d, SANs %v", tcp.Status.ObservedGeneration, gen, e.certSecretSANs(t, name))
		}
	})

	t.Run("rotate reissues the leaves, rotate --ca replaces the CA", func(t *testing.T) {
		serial := func(kind tenantpki.Kind, key string) string {
			s, err := e.cs.CoreV1().Secrets("default").Get(ctx(t), tenantpki.SecretName(name, kind), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := pem.Decode(s.Data[key])
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			return c.SerialNumber.String()
		}
		api, ca := serial(tenantpki.APIServer, tenantpki.KeyAPIServerCert), serial(tenantpki.CA, tenantpki.KeyCACert)
		k.ok(t, 4*time.Minute, "rotate", name, "--timeout", "3m")
		if serial(tenantpki.APIServer, tenantpki.KeyAPIServerCert) == api || serial(tenantpki.CA, tenantpki.KeyCACert) != ca {
			t.Fatal("rotate: the apiserver certificate kept its serial, or the CA changed")
		}
		e.waitStatus(t, name, kamajiv1alpha1.VersionReady)
		if got, err := kubectl("--context", name, "get", "ns", "-o", "name"); err != nil {
			t.Fatalf("the merged context after a leaf rotation: %v %s", err, got)
		}

		out := k.ok(t, 6*time.Minute, "rotate", name, "--ca", "--timeout", "5m")
		if !strings.Contains(out, "has a new CA") || !strings.Contains(out, "The old CA stays trusted until 20") || serial(tenantpki.CA, tenantpki.KeyCACert) == ca {
			t.Fatalf("rotate --ca: %s", out)
		}
		// The overlap: the merged context, signed by the old CA and trusting only it, still
		// works (the apiserver trusts both CAs and serves its certificate with the new CA
		// cross-signed by the old one).
		if got, err := kubectl("--context", name, "get", "ns", "-o", "name"); err != nil {
			t.Fatalf("the old credentials during the overlap: %v %s", err, got)
		}
		// Ending the overlap now, as a user may: refused until fetched again.
		endNow := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, tenantpki.CAPreviousUntilAnnotation, time.Now().Add(-time.Minute).UTC().Format(time.RFC3339))
		if _, err := e.cs.CoreV1().Secrets("default").Patch(ctx(t), tenantpki.SecretName(name, tenantpki.CA), types.MergePatchType, []byte(endNow), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the old credentials to be refused", func() error {
			if got, err := kubectl("--context", name, "get", "ns"); err == nil {
				return fmt.Errorf("still accepted: %s", got)
			}
			return nil
		})
		// The pods roll off the previous CA: the verb refuses until the tenant is Ready again.
		eventually(t, "kubeconfig --merge once the tenant is Ready again", func() error {
			if out, errOut, err := k.run(time.Minute, "kubeconfig", name, "--merge", "--context-name", name, "--overwrite"); err != nil {
				return fmt.Errorf("%v: %s%s", err, out, errOut)
			}
			return nil
		})
		eventually(t, "the new credentials to work", func() error {
			got, err := kubectl("--context", name, "get", "ns", "-o", "name")
			if err != nil {
				return fmt.Errorf("%v: %s", err, got)
			}
			return nil
		})
	})

	t.Run("sleep gives Sleeping, wake Ready with the replicas it had", func(t *testing.T) {
		out := k.ok(t, 3*time.Minute, "sleep", name, "--timeout", "2m")
		if !strings.Contains(out, "is Sleeping (it had 1 replica:") {
			t.Errorf("sleep: %s", out)
		}
		tcp := e.tcp(t, name)
		if s := tcp.Status.Kubernetes.Version.Status; s == nil || *s != kamajiv1alpha1.VersionSleeping || tcp.Annotations[cliReplicasAnnotation] != "1" {
			t.Fatalf("after sleep: status %v, annotations %v", s, tcp.Annotations)
		}
		eventually(t, "no control-plane pod", func() error {
			if pods := e.tenantPods(t, name); len(pods) != 0 {
				return fmt.Errorf("pods %v", podSummary(pods))
			}
			return nil
		})
		k.fails(t, "is Sleeping (scaled to zero): wake it first", "kubeconfig", name)
		k.fails(t, "is Sleeping", "join-command", name)

		k.ok(t, 3*time.Minute, "wake", name, "--timeout", "2m")
		tcp = e.tcp(t, name)
		if s := tcp.Status.Kubernetes.Version.Status; s == nil || *s != kamajiv1alpha1.VersionReady || *tcp.Spec.ControlPlane.Deployment.Replicas != 1 {
			t.Fatalf("after wake: status %v replicas %v", s, tcp.Spec.ControlPlane.Deployment.Replicas)
		}
		if _, ok := tcp.Annotations[cliReplicasAnnotation]; ok {
			t.Error("wake left the replicas annotation")
		}
		eventually(t, "kubectl through the merged context after the wake", func() error {
			got, err := kubectl("--context", name, "get", "ns", "-o", "name")
			if err != nil {
				return fmt.Errorf("%v: %s", err, got)
			}
			return nil
		})
	})

	t.Run("upgrade explains the policy, refuses a downgrade, and goes to the next minor", func(t *testing.T) {
		out, errOut, err := k.run(time.Minute, "upgrade", name, "--to", "v1.35.0")
		if err == nil || !strings.HasPrefix(out, "Upgrade policy:") || !strings.Contains(errOut, "downgrading from "+previousKubeVersion) {
			t.Fatalf("downgrade: %v\n%s\n%s", err, out, errOut)
		}
		if v := e.tcp(t, name).Spec.Kubernetes.Version; v != previousKubeVersion {
			t.Fatalf("a refused upgrade changed the version to %s", v)
		}
		out = k.ok(t, 6*time.Minute, "upgrade", name, "--to", local.KubeVersion, "--timeout", "5m")
		if !strings.HasSuffix(out, name+" runs "+local.KubeVersion+" and is Ready.\n") {
			t.Errorf("upgrade: %s", out)
		}
		if got := e.tcp(t, name).Status.Kubernetes.Version.Version; got != local.KubeVersion {
			t.Fatalf("installed %s", got)
		}
		step("upgraded to " + local.KubeVersion)
	})

	t.Run("join-command prints a line kubeadm join accepts (dry run)", func(t *testing.T) {
		line := strings.TrimSpace(k.ok(t, time.Minute, "join-command", name))
		m := regexp.MustCompile(`^kubeadm join (\S+) --token ([a-z0-9]{6})\.[a-z0-9]{16} --discovery-token-ca-cert-hash sha256:[0-9a-f]{64}$`).FindStringSubmatch(line)
		if m == nil || m[1] != endpoint {
			t.Fatalf("join-command printed %q (endpoint %s)", line, endpoint)
		}
		tenant := kubernetes.NewForConfigOrDie(e.tenantREST(t, name))
		eventually(t, "the tenant's controller manager to sign cluster-info for the token", func() error {
			cm, err := tenant.CoreV1().ConfigMaps("kube-public").Get(ctx(t), "cluster-info", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if cm.Data["jws-kubeconfig-"+m[2]] == "" {
				return fmt.Errorf("no jws-kubeconfig-%s", m[2])
			}
			return nil
		})
		kubeadm := filepath.Join(filepath.Dir(e.kubectl), "kubeadm")
		args := append(strings.Fields(line)[1:], "--dry-run", "--ignore-preflight-errors=all", "--node-name", "e2e-cli-dry-run", "--rootfs", t.TempDir())
		out, err := exec.Command(kubeadm, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "This node has joined the cluster") {
			t.Fatalf("kubeadm %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 30))
		}
		s, err := tenant.CoreV1().Secrets("kube-system").Get(ctx(t), "bootstrap-token-"+m[2], metav1.GetOptions{})
		if err != nil || s.Type != corev1.SecretType("bootstrap.kubernetes.io/token") {
			t.Fatalf("token Secret: %v", err)
		}
	})

	t.Run("errors are one line, completion is served", func(t *testing.T) {
		k.fails(t, `TenantControlPlane "nope" not found in namespace "default"`, "describe", "nope")
		k.fails(t, "cannot upgrade", "upgrade", name, "--to", "v1.99.0")
		if out := k.ok(t, time.Minute, "completion", "bash"); !strings.Contains(out, "kubectl-kamaji") {
			t.Errorf("completion bash: %.200s", out)
		}
		// As a shell asks: the word being completed comes last, so the kubeconfig comes from
		// the environment rather than a trailing flag.
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(c, k.kubectl, "kamaji", "__complete", "describe", "e2e-c")
		cmd.Env = append(os.Environ(), "PATH="+k.path, "KUBECONFIG="+k.kubeconfig)
		out, err := cmd.Output()
		if err != nil || !strings.HasPrefix(string(out), name+"\n") || strings.Contains(string(out), "tenant-00") {
			t.Errorf("completion of names: %q, %v", out, err)
		}
	})
}
