package tenantcontrolplane

import (
	"context"
	"fmt"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/tenant"
	"github.com/openhcp/kamaji/core/tenant/phases"
)

// stepAPIServerKubelet keeps the RBAC that lets the apiserver's kubelet client reach the
// kubelets (logs, exec, port-forward, metrics) when they authorize through the apiserver.
func stepAPIServerKubelet(ctx context.Context, r *Reconciler, p *pass) error {
	if _, err := applyTenant(ctx, p, tenant.PhaseUnit(phases.PhaseAPIServerKubelet), phases.APIServerKubelet(), apply.FieldManager); err != nil {
		return fail(kamajiv1alpha1.ConditionTenantConfigured, ReasonKubeadmPhaseFailed, fmt.Errorf("apiserver-to-kubelet RBAC: %w", err))
	}
	return nil
}
