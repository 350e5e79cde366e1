package charts_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/openhcp/kamaji/core/testenv"
)

// What the apiserver must answer to `kubectl auth can-i` as the manager's ServiceAccount.
type verdict int

const (
	allowed verdict = iota
	refused
	// broad: allowed by the generated rules, though the manager has no business with it; RBAC
	// cannot narrow it (see permissionCases). Printed, not asserted.
	broad
)

func (v verdict) String() string {
	return [...]string{"allowed", "refused", "allowed (broad)"}[v]
}

// permission is one `kubectl auth can-i` question. Namespace "" is a cluster-scoped resource,
// "*" every namespace (-A).
type permission struct {
	verb, resource, subresource, namespace string
	want                                   verdict
	why                                    string
}

func (p permission) String() string {
	s := p.verb + " " + p.resource
	if p.subresource != "" {
		s += " --subresource=" + p.subresource
	}
	switch p.namespace {
	case "":
	case "*":
		s += " -A"
	default:
		s += " -n " + p.namespace
	}
	return s
}

// permissionCases are the manager's needs (what its controllers, webhooks, webhook
// certificates and leader election do in tenantNS and in the release namespace) and what it
// must not be able to do.
//
// RBAC can refuse anything the manager never does on a kind (nodes, pods beyond list,
// RBAC objects, impersonation, token minting, webhook configurations other than the chart's,
// leases outside the release namespace). It cannot narrow what the manager does to the
// objects of a TenantControlPlane (Secrets, ConfigMaps, Services, Deployments): TCPs live in
// any namespace, so those rules are a ClusterRole, and RBAC has no label selector to limit them
// to the objects labelled kamaji.clastix.io/managed-by (the manager caches only those). So
// reading a Secret of kube-system is allowed: rows marked broad say so.
func permissionCases(tenantNS, releaseNS string) []permission {
	const (
		tcps = "tenantcontrolplanes.kamaji.clastix.io"
		dss  = "datastores.kamaji.clastix.io"
		kcgs = "kubeconfiggenerators.kamaji.clastix.io"
	)
	need := func(verb, resource, sub, ns, why string) permission {
		return permission{verb, resource, sub, ns, allowed, why}
	}
	deny := func(verb, resource, sub, ns, why string) permission {
		return permission{verb, resource, sub, ns, refused, why}
	}
	wide := func(verb, resource, ns, why string) permission {
		return permission{verb, resource, "", ns, broad, why}
	}
	return []permission{
		// The TenantControlPlane controller and webhooks.
		need("list", tcps, "", "*", "the controller's cache"),
		need("watch", tcps, "", "*", "the controller's cache"),
		need("get", tcps, "", tenantNS, "reconcile"),
		need("patch", tcps, "", tenantNS, "server-side apply of the finalizer"),
		need("update", tcps, "", tenantNS, "the finalizer"),
		need("patch", tcps, "status", tenantNS, "the status, applied once per pass"),
		need("update", tcps, "finalizers", tenantNS, "blockOwnerDeletion on the objects a TCP owns"),
		need("list", dss, "", "", "the DataStore controller's cache"),
		need("watch", dss, "", "", "the DataStore controller's cache"),
		need("patch", dss, "status", "", "the DataStore's status"),
		need("update", dss, "finalizers", "", "the DataStore's finalizer"),
		need("list", kcgs, "", "", "the KubeconfigGenerator controller"),
		need("patch", kcgs, "status", "", "the KubeconfigGenerator's status"),
		need("create", "secrets", "", tenantNS, "the tenant's certificates and kubeconfigs"),
		need("patch", "secrets", "", tenantNS, "server-side apply of the tenant's Secrets"),
		need("delete", "secrets", "", tenantNS, "Secrets a TCP no longer needs"),
		need("list", "secrets", "", "*", "the cache of the Secrets it owns (label-selected)"),
		need("watch", "secrets", "", "*", "the cache of the Secrets it owns (label-selected)"),
		need("patch", "services", "", tenantNS, "the tenant apiserver's Service"),
		need("patch", "configmaps", "", tenantNS, "addon files"),
		need("patch", "deployments.apps", "", tenantNS, "the control plane's Deployment"),
		need("delete", "deployments.apps", "", tenantNS, "Deployments a TCP no longer needs"),
		need("patch", "ingresses.networking.k8s.io", "", tenantNS, "spec.controlPlane.ingress"),
		need("patch", "tlsroutes.gateway.networking.k8s.io", "", tenantNS, "spec.controlPlane.gateway"),
		need("watch", "gateways.gateway.networking.k8s.io", "", "*", "the Gateway's status"),
		need("list", "pods", "", tenantNS, "the control plane pods' versions"),
		need("watch", "pods", "", tenantNS, "why a control plane pod does not start"),
		need("list", "namespaces", "", "", "the KubeconfigGenerator's namespace selector"),
		need("create", "events.events.k8s.io", "", tenantNS, "Events on TCPs"),
		need("create", "events", "", tenantNS, "Events through the core API"),
		// Leader election and the self-managed webhook certificate, in the release namespace.
		need("get", "leases.coordination.k8s.io", "", releaseNS, "leader election"),
		need("create", "leases.coordination.k8s.io", "", releaseNS, "leader election"),
		need("update", "leases.coordination.k8s.io", "", releaseNS, "leader election renewals"),
		need("create", "secrets", "", releaseNS, "the webhook serving certificate"),
		// Automatic sleep: a TCP's activity Lease, beside it; the wake EndpointSlice of its Service.
		need("patch", "leases.coordination.k8s.io", "", tenantNS, "the activity Lease of a TCP that sleeps when idle"),
		need("watch", "leases.coordination.k8s.io", "", "*", "the cache of the activity Leases (label-selected)"),
		need("patch", "endpointslices.discovery.k8s.io", "", tenantNS, "the wake EndpointSlice of a sleeping TCP"),
		need("delete", "endpointslices.discovery.k8s.io", "", tenantNS, "the wake EndpointSlice of a woken TCP"),
		need("watch", "endpointslices.discovery.k8s.io", "", releaseNS, "the manager pods that hold a sleeping TCP's connections"),
		need("get", "validatingwebhookconfigurations.admissionregistration.k8s.io/kamaji-validating-webhook-configuration", "", "", "CA bundle injection"),
		need("patch", "validatingwebhookconfigurations.admissionregistration.k8s.io/kamaji-validating-webhook-configuration", "", "", "CA bundle injection"),
		need("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io/kamaji-mutating-webhook-configuration", "", "", "CA bundle injection"),

		deny("delete", "nodes", "", "", "the manager never touches nodes"),
		deny("list", "nodes", "", "", "the manager never reads nodes"),
		deny("delete", "namespaces", "", "", "namespaces are read only"),
		deny("create", "namespaces", "", "", "namespaces are read only"),
		deny("create", "clusterrolebindings.rbac.authorization.k8s.io", "", "", "no RBAC writes"),
		deny("create", "rolebindings.rbac.authorization.k8s.io", "", "kube-system", "no RBAC writes"),
		deny("create", "clusterroles.rbac.authorization.k8s.io", "", "", "no RBAC writes"),
		deny("escalate", "clusterroles.rbac.authorization.k8s.io", "", "", "no privilege escalation"),
		deny("bind", "clusterroles.rbac.authorization.k8s.io", "", "", "no binding of roles it does not hold"),
		deny("impersonate", "users", "", "", "no impersonation"),
		deny("impersonate", "serviceaccounts", "", "kube-system", "no impersonation"),
		deny("create", "pods", "", tenantNS, "pods come from the Deployment it writes"),
		deny("get", "pods", "", tenantNS, "pods are listed only"),
		deny("delete", "pods", "", tenantNS, "pods are listed only"),
		deny("create", "pods", "exec", tenantNS, "no exec into pods"),
		deny("create", "serviceaccounts", "token", "kube-system", "no minting of tokens"),
		deny("create", "serviceaccounts", "", tenantNS, "no ServiceAccounts in the admin cluster"),
		deny("create", "daemonsets.apps", "", "kube-system", "Deployments only"),
		deny("delete", "leases.coordination.k8s.io", "", "kube-system", "leases are deleted only in the release namespace; an activity Lease goes with its TCP"),
		deny("delete", "leases.coordination.k8s.io", "", tenantNS, "leases are deleted only in the release namespace; an activity Lease goes with its TCP"),
		deny("patch", "validatingwebhookconfigurations.admissionregistration.k8s.io/someone-elses", "", "", "only the chart's webhook configurations"),
		deny("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io", "", "", "only the chart's webhook configurations, by name"),
		deny("create", "validatingwebhookconfigurations.admissionregistration.k8s.io", "", "", "the chart creates them, not the manager"),
		deny("delete", "validatingwebhookconfigurations.admissionregistration.k8s.io/kamaji-validating-webhook-configuration", "", "", "the chart owns them"),
		deny("create", "customresourcedefinitions.apiextensions.k8s.io", "", "", "the CRD chart owns the CRDs"),
		deny("update", "customresourcedefinitions.apiextensions.k8s.io", "", "", "the CRD chart owns the CRDs"),
		deny("create", "tokenreviews.authentication.k8s.io", "", "", "unused: /metrics is served without authentication"),
		deny("create", "subjectaccessreviews.authorization.k8s.io", "", "", "unused: /metrics is served without authorization"),
		deny("create", "certificatesigningrequests.certificates.k8s.io", "", "", "tenant certificates are signed by the manager itself"),
		deny("update", "certificatesigningrequests.certificates.k8s.io", "approval", "", "no approval of certificates"),
		deny("update", kcgs, "", "", "KubeconfigGenerators are the user's: status only"),

		wide("get", "secrets", "kube-system", "Secrets of every namespace: TCPs live anywhere"),
		wide("list", "secrets", "kube-system", "Secrets of every namespace: TCPs live anywhere"),
		wide("delete", "secrets", "kube-system", "Secrets of every namespace: TCPs live anywhere"),
		wide("get", "configmaps", "kube-system", "ConfigMaps of every namespace: TCPs live anywhere"),
		wide("patch", "deployments.apps", "kube-system", "Deployments of every namespace: TCPs live anywhere"),
		wide("patch", "leases.coordination.k8s.io", "kube-system", "activity Leases of every namespace: TCPs live anywhere"),
	}
}

// checkPermissions asks the apiserver each question of permissionCases with `kubectl auth
// can-i` under kubeconfig (a SelfSubjectAccessReview by that identity), after checking with
// `kubectl auth whoami` that the identity is user.
func checkPermissions(t *testing.T, kubeconfig, user, tenantNS, releaseNS string) {
	t.Helper()
	kubectl, err := testenv.Binary("kubectl")
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, string, error) {
		cmd := exec.Command(kubectl, append(args, "--kubeconfig", kubeconfig)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return strings.TrimSpace(stdout.String()), strings.TrimSpace(stderr.String()), err
	}
	out, stderr, err := run("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
	if err != nil || out != user {
		t.Fatalf("kubectl auth whoami: %q (want %q): %v %s", out, user, err, stderr)
	}
	var table strings.Builder
	fmt.Fprintf(&table, "%-112s %-16s %s\n", "kubectl auth can-i, as "+user, "answer", "why")
	for _, p := range permissionCases(tenantNS, releaseNS) {
		args := []string{"auth", "can-i", p.verb, p.resource}
		if p.subresource != "" {
			args = append(args, "--subresource", p.subresource)
		}
		switch p.namespace {
		case "":
		case "*":
			args = append(args, "--all-namespaces")
		default:
			args = append(args, "--namespace", p.namespace)
		}
		// can-i answers "yes" (exit 0) or "no" (exit 1); anything else is a failed question.
		answer, stderr, err := run(args...)
		if answer != "yes" && answer != "no" {
			t.Errorf("kubectl %s: %q: %v %s", strings.Join(args, " "), answer, err, stderr)
			continue
		}
		got := refused
		if answer == "yes" {
			got = allowed
		}
		shown := got
		if p.want == broad && got == allowed {
			shown = broad
		}
		fmt.Fprintf(&table, "%-112s %-16s %s\n", p.String(), shown, p.why)
		if p.want != broad && got != p.want {
			t.Errorf("the manager's ServiceAccount: %s is %s, want %s (%s)", p, got, p.want, p.why)
		}
	}
	t.Logf("the manager's effective permissions:\n%s", table.String())
}
