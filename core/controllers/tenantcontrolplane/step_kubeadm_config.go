package tenantcontrolplane

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/tenant"
	"github.com/openhcp/kamaji/core/tenant/phases"
)

// stepKubeadmConfig keeps kube-system/kubeadm-config (the tenant's ClusterConfiguration, read
// by kubeadm join and upgrade) and the Role that lets bootstrap tokens and nodes read it.
func stepKubeadmConfig(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionTenantConfigured
	objs, err := phases.KubeadmConfig(phasesInput(p))
	if err != nil {
		return fail(cond, ReasonKubeadmPhaseFailed, err)
	}
	sum, err := applyTenant(ctx, p, tenant.PhaseUnit(phases.PhaseKubeadmConfig), objs, apply.FieldManager)
	if err != nil {
		return fail(cond, ReasonKubeadmPhaseFailed, fmt.Errorf("kubeadm-config: %w", err))
	}
	st := &p.status.KubeadmConfig
	if st.Checksum != sum {
		st.LastUpdate = metav1.NewTime(p.now)
	}
	st.ConfigmapName, st.Checksum = phases.KubeadmConfigConfigMap, sum
	return nil
}
