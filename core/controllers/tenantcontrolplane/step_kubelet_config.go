package tenantcontrolplane

import (
	"context"
	"errors"
	"fmt"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/tenant"
	"github.com/openhcp/kamaji/core/tenant/phases"
)

// stepKubeletConfig keeps kube-system/kubelet-config, the KubeletConfiguration every joining
// node starts from (spec.kubernetes.kubelet: cgroup driver, cluster DNS, JSON patches), and
// the kubeadm:kubelet-config Role and RoleBinding that let nodes and bootstrap tokens read it.
// A patch that does not apply is a condition naming it.
func stepKubeletConfig(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionTenantConfigured
	objs, err := phases.KubeletConfig(p.tcp)
	if err != nil {
		var pe *phases.PatchError
		if errors.As(err, &pe) {
			return fail(cond, ReasonKubeletConfigPatch, err)
		}
		return fail(cond, ReasonKubeadmPhaseFailed, err)
	}
	if _, err := applyTenant(ctx, p, tenant.PhaseUnit(phases.PhaseKubeletConfig), objs, apply.FieldManager); err != nil {
		return fail(cond, ReasonKubeadmPhaseFailed, fmt.Errorf("kubelet-config: %w", err))
	}
	return nil
}
