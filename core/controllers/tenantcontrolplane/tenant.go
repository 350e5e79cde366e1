package tenantcontrolplane

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/tenant/phases"
	"github.com/openhcp/kamaji/core/tenantpki"
)

// Reasons of the TenantConfigured condition.
const (
	ReasonTenantConfigured       = "KubeadmPhasesApplied"
	ReasonWaitingForControlPlane = "WaitingForControlPlane"
	ReasonTenantSleeping         = "Sleeping"
	ReasonTenantNotReady         = "TenantAPIServerNotReady"
	ReasonTenantClientFailed     = "TenantClientFailed"
	ReasonKubeadmPhaseFailed     = "KubeadmPhaseFailed"
	ReasonKubeletConfigPatch     = "KubeletConfigurationPatchFailed"

	// tenantNotReadyRecheck: how soon to ask a tenant apiserver that did not answer again.
	tenantNotReadyRecheck = 10 * time.Second
)

// tenantSteps run inside the tenant cluster, in order, once the admin-side steps succeeded and
// the control plane has an available replica: the client first (it checks /readyz), then
// kubeadm's phases. stepAddons follows them.
var tenantSteps = []step{
	{"tenant-client", stepTenantClient},
	{"kubeadm-config", stepKubeadmConfig},
	{"kubelet-config", stepKubeletConfig},
	{"bootstrap-token", stepBootstrapToken},
	{"cluster-info", stepClusterInfo},
	{"cluster-admins", stepClusterAdmins},
	{"apiserver-kubelet", stepAPIServerKubelet},
	{"write-permissions", stepWritePermissions},
}

// reconcileTenant configures the tenant cluster. Its outcome is the TenantConfigured and
// AddonsReady conditions; it leaves the Kamaji version status and the Ready condition, which
// describe the control plane, alone. While the TCP sleeps the tenant's client and watches are
// stopped; they are built again when it wakes.
func (r *Reconciler) reconcileTenant(ctx context.Context, p *pass) error {
	if r.Tenants == nil {
		return nil
	}
	key := client.ObjectKeyFromObject(p.tcp)
	if p.replicas() == 0 {
		r.Tenants.Stop(key)
		msg := "the control plane is scaled to zero; the tenant is configured again when it wakes"
		p.setCondition(kamajiv1alpha1.ConditionTenantConfigured, metav1.ConditionUnknown, ReasonTenantSleeping, msg)
		p.setCondition(kamajiv1alpha1.ConditionAddonsReady, metav1.ConditionUnknown, ReasonTenantSleeping, msg)
		return nil
	}
	if migrating(p.status.Storage) {
		// Writes are frozen in the tenant (and the apiserver may be switching datastores).
		msg := "the tenant's data is being migrated; the tenant is configured again once it is done"
		p.setCondition(kamajiv1alpha1.ConditionTenantConfigured, metav1.ConditionUnknown, ReasonMigrating, msg)
		p.setCondition(kamajiv1alpha1.ConditionAddonsReady, metav1.ConditionUnknown, ReasonMigrating, msg)
		return nil
	}
	if p.status.Kubernetes.Deployment.AvailableReplicas == 0 {
		// The Deployment watch brings us back when a replica is available.
		msg := "waiting for an available control-plane replica"
		p.setCondition(kamajiv1alpha1.ConditionTenantConfigured, metav1.ConditionFalse, ReasonWaitingForControlPlane, msg)
		p.setCondition(kamajiv1alpha1.ConditionAddonsReady, metav1.ConditionFalse, ReasonWaitingForControlPlane, msg)
		return nil
	}
	for _, s := range tenantSteps {
		if err := r.runStep(ctx, s, p); err != nil {
			return err
		}
	}
	p.setCondition(kamajiv1alpha1.ConditionTenantConfigured, metav1.ConditionTrue, ReasonTenantConfigured,
		"kubeadm-config, kubelet-config, bootstrap-token RBAC, cluster-info and cluster-admins are applied")
	return r.runStep(ctx, step{"addons", stepAddons}, p)
}

// phasesInput describes the tenant to the kubeadm phases.
func phasesInput(p *pass) phases.Input {
	in := phases.Input{TCP: p.tcp, Endpoint: p.endpoint}
	if p.ca != nil {
		in.CACert = p.ca.TrustPEM()
	}
	if p.conn.Etcd != nil {
		in.EtcdServers = p.conn.Etcd.Servers
	}
	return in
}

// applyTenant declares objs in the tenant as one unit with the field manager, after making
// sure their kinds are watched. When nothing changed since the unit was last applied (same
// objects, no watch event on them) nothing is sent: the tenant apiserver is not asked for
// anything at steady state. It returns the unit's checksum.
func applyTenant(ctx context.Context, p *pass, unit string, objs []client.Object, manager string) (string, error) {
	tc := p.tenant
	for _, o := range objs {
		gvk, err := apiutil.GVKForObject(o, tc.Scheme())
		if err != nil {
			return "", err
		}
		if err := tc.Watch(ctx, gvk); err != nil {
			return "", err
		}
	}
	raw, err := json.Marshal(objs)
	if err != nil {
		return "", err
	}
	sum := tenantpki.Checksum(map[string][]byte{"objects": raw})
	if tc.Unchanged(unit, sum) {
		return sum, nil
	}
	events := tc.Events(unit)
	for _, o := range objs {
		if err := apply.ApplyAs(ctx, tc, o, manager); err != nil {
			return "", fmt.Errorf("%T %s: %w", o, client.ObjectKeyFromObject(o), err)
		}
	}
	tc.Record(unit, sum, events)
	return sum, nil
}
