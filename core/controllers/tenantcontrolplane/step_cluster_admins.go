package tenantcontrolplane

import (
	"context"
	"fmt"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/tenant"
	"github.com/openhcp/kamaji/core/tenant/phases"
)

// stepClusterAdmins binds kubeadm:cluster-admins (the group of admin.conf) to cluster-admin,
// which makes admin.conf usable; super-admin.conf (system:masters) needs no binding.
func stepClusterAdmins(ctx context.Context, r *Reconciler, p *pass) error {
	if _, err := applyTenant(ctx, p, tenant.PhaseUnit(phases.PhaseClusterAdmins), phases.ClusterAdmins(), apply.FieldManager); err != nil {
		return fail(kamajiv1alpha1.ConditionTenantConfigured, ReasonKubeadmPhaseFailed, fmt.Errorf("kubeadm:cluster-admins: %w", err))
	}
	return nil
}
