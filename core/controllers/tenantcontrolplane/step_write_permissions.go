package tenantcontrolplane

import (
	"context"
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/tenant/writeblock"
)

// ReasonWriteLimitFailed: the write limitation could not be put in place or lifted.
const ReasonWriteLimitFailed = "WritePermissionsFailed"

// WritePermissionsBlock is what spec.writePermissions asks for: the blocked operations refused
// everywhere but kube-system, for everyone but the core's own identity in the tenant (it keeps
// kubeadm's phases and the addons current). The zero value blocks nothing.
func WritePermissionsBlock(p kamajiv1alpha1.Permissions) writeblock.Block {
	var ops []admissionregistrationv1.OperationType
	var words []string
	if p.BlockCreate {
		ops, words = append(ops, admissionregistrationv1.Create), append(words, "creations")
	}
	if p.BlockUpdate {
		ops, words = append(ops, admissionregistrationv1.Update), append(words, "updates")
	}
	if p.BlockDelete {
		ops, words = append(ops, admissionregistrationv1.Delete), append(words, "deletions")
	}
	return writeblock.Block{
		Name: "kamaji-write-permissions", Operations: ops,
		Exempt: []string{metav1.NamespaceSystem}, ExemptUsers: []string{kubeconfig.SuperAdminUser},
		Message: fmt.Sprintf("this tenant is write-limited: %s are blocked outside kube-system (spec.writePermissions of its TenantControlPlane)", strings.Join(words, ", ")),
	}
}

// stepWritePermissions enforces spec.writePermissions in the tenant with a webhook
// configuration its apiserver calls the manager for (see core/tenant/writeblock), and removes it
// once no write is blocked. The version status is WriteLimited while a limitation applies.
func stepWritePermissions(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionTenantConfigured
	wp := p.tcp.Spec.WritePermissions
	b := WritePermissionsBlock(wp)
	const unit, legacy = "write-permissions", "write-permissions/legacy-policy"
	if !wp.HasAnyLimitation() {
		// Removed once per tenant client, not on every pass.
		if p.tenant.Unchanged(unit, "none") {
			return nil
		}
		if err := b.Remove(ctx, p.tenant); err != nil {
			return fail(cond, ReasonWriteLimitFailed, fmt.Errorf("lifting the write limitation: %w", err))
		}
		p.tenant.Record(unit, "none", p.tenant.Events(unit))
		return nil
	}
	// Declared on every pass while limited: a configuration deleted in the tenant comes back.
	p.tenant.Forget(unit)
	wh, err := r.tenantWebhook()
	if err != nil {
		return fail(cond, ReasonWriteLimitFailed, fmt.Errorf("spec.writePermissions cannot be enforced: %w", err))
	}
	b.Webhook = wh
	if err := b.Install(ctx, p.tenant, apply.FieldManager); err != nil {
		return fail(cond, ReasonWriteLimitFailed, fmt.Errorf("write limitation: %w", err))
	}
	// The admission policy an earlier version installed goes, once per tenant client (no
	// object is watched under that unit: it stays recorded).
	if !p.tenant.Unchanged(legacy, "removed") {
		if err := b.RemoveLegacy(ctx, p.tenant); err != nil {
			return fail(cond, ReasonWriteLimitFailed, fmt.Errorf("write limitation: removing the previous version's admission policy: %w", err))
		}
		p.tenant.Record(legacy, "removed", p.tenant.Events(legacy))
	}
	return nil
}
