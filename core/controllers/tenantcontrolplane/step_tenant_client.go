package tenantcontrolplane

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/kubeconfig"
)

// stepTenantClient takes the tenant's client (one per tenant, reused across passes, rebuilt
// when the kubeconfig changes) and checks that the tenant apiserver answers /readyz. The client
// authenticates with super-admin.conf (system:masters): admin.conf only works once the
// kubeadm:cluster-admins binding exists, and that binding is created through this client. The
// annotation kamaji.clastix.io/kubeconfig-secret-key selects another key of the Secret.
func stepTenantClient(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionTenantConfigured
	keyName := kubeconfig.KeySuperAdmin
	if k := p.tcp.Annotations[kamajiv1alpha1.KubeconfigSecretKeyAnnotation]; k != "" {
		keyName = k
	}
	kc := p.adminKubeconfig[keyName]
	if len(kc) == 0 {
		return failf(cond, ReasonTenantClientFailed, "the admin kubeconfig Secret %s has no key %q (annotation %s)",
			kubeconfig.AdminSecretName(p.tcp.Name), keyName, kamajiv1alpha1.KubeconfigSecretKeyAnnotation)
	}
	tc, err := r.Tenants.Get(client.ObjectKeyFromObject(p.tcp), kc)
	if err != nil {
		return fail(cond, ReasonTenantClientFailed, err)
	}
	if err := tc.Ready(ctx); err != nil {
		e := fail(cond, ReasonTenantNotReady, fmt.Errorf("the tenant apiserver at %s is not ready: %w", tc.Host(), err))
		e.retryAfter = tenantNotReadyRecheck
		return e
	}
	p.tenant = tc
	return nil
}
