package tenantcontrolplane

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/exposure"
	"github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/tenantpki"
)

const ReasonKonnectivityFailed = "KonnectivityCertificatesFailed"

// stepKonnectivity keeps the two Secrets the konnectivity-server sidecar mounts (the plugin
// names them, the core creates them): its certificate, signed by the tenant CA for the
// endpoint the agents dial (the apiserver's SANs), and its kubeconfig for the apiserver of the
// same pod (loopback). Both are in the pod template checksum: the sidecar mounts them by
// subPath. Without konnectivity in the spec they are removed.
func stepKonnectivity(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionAddonsReady
	certName := tenantpki.SecretName(p.tcp.Name, tenantpki.Konnectivity)
	kcName := kubeconfig.KonnectivitySecretName(p.tcp.Name)
	ks := &p.status.Addons.Konnectivity
	if _, enabled := p.renders[AddonKonnectivity]; !enabled {
		for _, name := range []string{certName, kcName} {
			cur, err := r.readSecret(ctx, p, name)
			if err != nil {
				return fail(cond, ReasonKonnectivityFailed, err)
			}
			if cur.obj != nil {
				if err := apply.Delete(ctx, r.Client, cur.obj); err != nil {
					return fail(cond, ReasonKonnectivityFailed, err)
				}
			}
		}
		ks.Certificate, ks.Kubeconfig = kamajiv1alpha1.CertificatePrivateKeyPairStatus{}, kamajiv1alpha1.KubeconfigStatus{}
		return nil
	}

	clk := clock(r.now)
	cur, err := r.readSecret(ctx, p, certName)
	if err != nil {
		return fail(cond, ReasonKonnectivityFailed, err)
	}
	curKC, err := r.readSecret(ctx, p, kcName)
	if err != nil {
		return fail(cond, ReasonKonnectivityFailed, err)
	}
	// The kubeconfig's client certificate is the konnectivity certificate: a rotation request on
	// either reissues it.
	opts := tenantpki.Options{RenewBefore: r.Options.CertificateExpirationDeadline, Force: cur.rotate || curKC.rotate}
	sans := tenantpki.APIServerSANs(p.tcp, p.service.Name, p.service.Spec.ClusterIP, apiServerExtraSANs(p)...)
	data, reason, err := chained(p, tenantpki.KeyKonnectivityCert, func(cur ownedSecret, opts tenantpki.Options) (map[string][]byte, tenantpki.Reason, error) {
		return tenantpki.EnsureKonnectivity(cur.data, p.ca, sans, opts, clk)
	})(cur, opts)
	if err != nil {
		return fail(cond, ReasonKonnectivityFailed, fmt.Errorf("%s: %w", certName, err))
	}
	if cur.paused {
		data = cur.data
	}
	if err := r.writeSecret(ctx, p, cur, data, reason); err != nil {
		return fail(cond, ReasonKonnectivityFailed, err)
	}
	sum := tenantpki.Checksum(data)
	if ks.Certificate.Checksum != sum || ks.Certificate.SecretName != certName {
		ks.Certificate.LastUpdate = metav1.NewTime(p.now)
	}
	ks.Certificate.SecretName, ks.Certificate.Checksum = certName, sum

	server := kubeconfig.LocalServer(exposure.Port(p.tcp))
	kc, kcReason, err := kubeconfig.EnsureKonnectivity(curKC.data, p.ca, p.tcp.Name, server, data[tenantpki.KeyKonnectivityCert], data[tenantpki.KeyKonnectivityKey])
	if err != nil {
		return fail(cond, ReasonKonnectivityFailed, fmt.Errorf("%s: %w", kcName, err))
	}
	if err := r.writeSecret(ctx, p, curKC, kc, kcReason); err != nil {
		return fail(cond, ReasonKonnectivityFailed, err)
	}
	written := kc
	if curKC.paused {
		written = curKC.data
	}
	kcSum := tenantpki.Checksum(written)
	if ks.Kubeconfig.Checksum != kcSum || ks.Kubeconfig.SecretName != kcName {
		ks.Kubeconfig.LastUpdate = metav1.NewTime(p.now)
	}
	ks.Kubeconfig.SecretName, ks.Kubeconfig.Checksum = kcName, kcSum
	return nil
}

// konnectivityObjects records in the status what the konnectivity addon keeps in the tenant, as
// rendered: the agents' ServiceAccount, the server's ClusterRoleBinding and the agents' workload
// (its kind is the agent mode). changed says the objects were just (re)applied.
func konnectivityObjects(ks *kamajiv1alpha1.KonnectivityStatus, objs []*unstructured.Unstructured, changed bool, now time.Time) {
	record := func(st *kamajiv1alpha1.ExternalKubernetesObjectStatus, o *unstructured.Unstructured) {
		if changed || st.Name != o.GetName() || st.Namespace != o.GetNamespace() || st.LastUpdate.IsZero() {
			st.LastUpdate = metav1.NewTime(now)
		}
		st.Name, st.Namespace = o.GetName(), o.GetNamespace()
	}
	for _, o := range objs {
		switch o.GroupVersionKind().GroupKind() {
		case schema.GroupKind{Kind: "ServiceAccount"}:
			record(&ks.ServiceAccount, o)
		case schema.GroupKind{Group: rbacv1.GroupName, Kind: "ClusterRoleBinding"}:
			record(&ks.ClusterRoleBinding, o)
		case schema.GroupKind{Group: appsv1.GroupName, Kind: "DaemonSet"}:
			ks.Agent.Name, ks.Agent.Namespace, ks.Agent.Mode = o.GetName(), o.GetNamespace(), kamajiv1alpha1.KonnectivityAgentModeDaemonSet
		case schema.GroupKind{Group: appsv1.GroupName, Kind: "Deployment"}:
			ks.Agent.Name, ks.Agent.Namespace, ks.Agent.Mode = o.GetName(), o.GetNamespace(), kamajiv1alpha1.KonnectivityAgentModeDeployment
		}
	}
}

// forgetKonnectivityObjects clears what konnectivityObjects recorded, once the addon is removed.
func forgetKonnectivityObjects(ks *kamajiv1alpha1.KonnectivityStatus) {
	ks.Agent = kamajiv1alpha1.KonnectivityAgentStatus{}
	ks.ServiceAccount = kamajiv1alpha1.ExternalKubernetesObjectStatus{}
	ks.ClusterRoleBinding = kamajiv1alpha1.ExternalKubernetesObjectStatus{}
}
