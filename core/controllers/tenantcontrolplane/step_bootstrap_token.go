package tenantcontrolplane

import (
	"context"
	"fmt"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/tenant"
	"github.com/openhcp/kamaji/core/tenant/phases"
)

// stepBootstrapToken keeps the RBAC of kubeadm's bootstrap-token phase: bootstrap tokens may
// get nodes and post CSRs; the tenant's csrapprover approves their node client CSRs and the
// nodes' renewal CSRs. The tokens themselves are the users' (kubeadm token create).
func stepBootstrapToken(ctx context.Context, r *Reconciler, p *pass) error {
	sum, err := applyTenant(ctx, p, tenant.PhaseUnit(phases.PhaseBootstrapToken), phases.BootstrapToken(), apply.FieldManager)
	if err != nil {
		return fail(kamajiv1alpha1.ConditionTenantConfigured, ReasonKubeadmPhaseFailed, fmt.Errorf("bootstrap-token RBAC: %w", err))
	}
	p.bootstrapTokenSum = sum
	return nil
}
