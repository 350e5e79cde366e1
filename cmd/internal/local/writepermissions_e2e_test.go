package local_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/kubeconfig"
)

func init() {
	registerPlaneSubtest("a write-limited tenant refuses writes outside kube-system until the limits are lifted", testWritePermissions)
}

// writeLimitedMessage is what a client refused by spec.writePermissions reads.
const writeLimitedMessage = "this tenant is write-limited"

// testWritePermissions limits tenant-00's writes and checks them as its admin (admin.conf,
// kubernetes-admin in kubeadm:cluster-admins, the identity a user gets) with kubectl: creations,
// updates and deletions are refused in default and for cluster-scoped objects, with a message
// saying the tenant is write-limited, and accepted in kube-system; once the fields are removed
// the status is Ready again and a create in default goes through.
func testWritePermissions(t *testing.T, e *e2e) {
	const name = "tenant-00"
	const existing, fresh, ns = "e2e-write-limited-existing", "e2e-write-limited", "e2e-write-limited"
	e.waitStatus(t, name, kamajiv1alpha1.VersionReady)
	admin := e.adminConf(t, name)
	super := kubernetes.NewForConfigOrDie(e.tenantREST(t, name))
	t.Cleanup(func() {
		e.liftWritePermissions(t, name)
		for _, o := range []struct{ ns, name string }{{"default", existing}, {"default", fresh}, {"kube-system", fresh}} {
			if err := super.CoreV1().ConfigMaps(o.ns).Delete(ctx(t), o.name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("deleting ConfigMap %s/%s: %v", o.ns, o.name, err)
			}
		}
		if err := super.CoreV1().Namespaces().Delete(ctx(t), ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", ns, err)
		}
	})
	// An object to update and delete while the tenant is limited.
	if out, err := e.kubectlAs(admin, "create", "configmap", existing, "-n", "default", "--from-literal=k=v"); err != nil {
		t.Fatalf("before the limitation: %v", out)
	}

	e.setWritePermissions(t, name, kamajiv1alpha1.Permissions{BlockCreate: true, BlockUpdate: true, BlockDelete: true})
	e.waitStatus(t, name, kamajiv1alpha1.VersionWriteLimited)
	// The tenant's apiserver loads webhook configurations asynchronously: wait until a dry run
	// (which goes through admission like a write) is refused, then write for real.
	eventually(t, "a dry-run create in default to be refused", func() error {
		out, err := e.kubectlAs(admin, "create", "configmap", fresh, "-n", "default", "--dry-run=server")
		if err == nil {
			return fmt.Errorf("accepted: %s", out)
		}
		if !strings.Contains(out, writeLimitedMessage) {
			return fmt.Errorf("refused without saying the tenant is write-limited: %s", out)
		}
		return nil
	})
	// The limitation is a webhook the tenant apiserver calls the manager for, at the chart's
	// webhook Service by name.
	vwc, err := super.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx(t), "kamaji-write-permissions", metav1.GetOptions{})
	if err != nil || len(vwc.Webhooks) != 1 || vwc.Webhooks[0].ClientConfig.URL == nil || !strings.HasPrefix(*vwc.Webhooks[0].ClientConfig.URL, "https://kamaji-webhook-service.kamaji-system.svc:443/") {
		t.Errorf("the ValidatingWebhookConfiguration kamaji-write-permissions: %v %+v", err, vwc)
	}
	if _, err := super.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx(t), "kamaji-write-permissions", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a ValidatingAdmissionPolicy kamaji-write-permissions: %v", err)
	}
	refused := func(what string, args ...string) {
		t.Helper()
		out, err := e.kubectlAs(admin, args...)
		switch {
		case err == nil:
			t.Errorf("%s while write-limited: accepted: %s", what, out)
		case !strings.Contains(out, writeLimitedMessage):
			t.Errorf("%s while write-limited: refused without saying the tenant is write-limited: %s", what, out)
		default:
			t.Logf("%s refused: %s", what, out)
		}
	}
	refused("a create in default", "create", "configmap", fresh, "-n", "default", "--from-literal=k=v")
	refused("an update in default", "label", "configmap", existing, "-n", "default", "e2e=updated")
	refused("a delete in default", "delete", "configmap", existing, "-n", "default", "--wait=false")
	refused("a cluster-scoped create", "create", "namespace", ns)
	for _, args := range [][]string{
		{"create", "configmap", fresh, "-n", "kube-system", "--from-literal=k=v"},
		{"label", "configmap", fresh, "-n", "kube-system", "e2e=updated"},
		{"delete", "configmap", fresh, "-n", "kube-system", "--wait=false"},
	} {
		if out, err := e.kubectlAs(admin, args...); err != nil {
			t.Errorf("%s in kube-system while write-limited: %v", args[0], out)
		}
	}

	e.setWritePermissions(t, name, kamajiv1alpha1.Permissions{})
	e.waitStatus(t, name, kamajiv1alpha1.VersionReady)
	eventually(t, "a create in default to be accepted once the limits are lifted", func() error {
		out, err := e.kubectlAs(admin, "create", "configmap", fresh, "-n", "default", "--from-literal=k=v")
		if err != nil {
			return fmt.Errorf("%s", out)
		}
		return nil
	})
	if out, err := e.kubectlAs(admin, "delete", "configmap", existing, "-n", "default"); err != nil {
		t.Errorf("a delete in default once the limits are lifted: %s", out)
	}
	if _, err := super.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx(t), "kamaji-write-permissions", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the ValidatingWebhookConfiguration kamaji-write-permissions once the limits are lifted: %v", err)
	}
}

// setWritePermissions sets the TCP's spec.writePermissions (the zero value lifts every limit).
func (e *e2e) setWritePermissions(t *testing.T, name string, p kamajiv1alpha1.Permissions) {
	t.Helper()
	e.patchTCP(t, name, func(tcp *kamajiv1alpha1.TenantControlPlane) { tcp.Spec.WritePermissions = p })
}

// liftWritePermissions removes any write limitation left on the TCP and waits until it is
// Ready: the clean-up of the subtests that limit writes.
func (e *e2e) liftWritePermissions(t *testing.T, name string) {
	t.Helper()
	if e.tcp(t, name).Spec.WritePermissions.HasAnyLimitation() {
		e.setWritePermissions(t, name, kamajiv1alpha1.Permissions{})
	}
	e.waitStatus(t, name, kamajiv1alpha1.VersionReady)
}

// adminConf writes the tenant's admin.conf from its Secret (kubernetes-admin, bound to
// cluster-admin through kubeadm:cluster-admins: the kubeconfig a user is given, subject to
// admission webhooks like any user) and returns its path.
func (e *e2e) adminConf(t *testing.T, name string) string {
	t.Helper()
	s, err := e.cs.CoreV1().Secrets("default").Get(ctx(t), kubeconfig.AdminSecretName(name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), kubeconfig.KeyAdmin)
	if err := os.WriteFile(path, s.Data[kubeconfig.KeyAdmin], 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// kubectlAs runs kubectl with the kubeconfig at path and returns its combined output, the
// error message included.
func (e *e2e) kubectlAs(path string, args ...string) (string, error) {
	args = append([]string{"--kubeconfig", path, "--request-timeout=10s"}, args...)
	out, err := exec.Command(e.kubectl, args...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("kubectl %s: %v: %s", strings.Join(args, " "), err, out), err
	}
	return strings.TrimSpace(string(out)), nil
}
