package tenantcontrolplane

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/tenant"
	"github.com/openhcp/kamaji/core/tenant/phases"
	"github.com/openhcp/kamaji/core/tenantpki"
)

// stepClusterInfo keeps kube-public/cluster-info (the public endpoint and the tenant CA, what
// token discovery reads and verifies) and its anonymous read access. The tenant's bootstrap
// signer adds the JWS signatures of the tokens beside the kubeconfig; they are its fields, left
// alone by our apply. Its status is the bootstrap-token phase's, with the RBAC of
// stepBootstrapToken.
func stepClusterInfo(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionTenantConfigured
	objs, err := phases.ClusterInfo(phasesInput(p))
	if err != nil {
		return fail(cond, ReasonKubeadmPhaseFailed, err)
	}
	sum, err := applyTenant(ctx, p, tenant.PhaseUnit(phases.PhaseClusterInfo), objs, apply.FieldManager)
	if err != nil {
		return fail(cond, ReasonKubeadmPhaseFailed, fmt.Errorf("cluster-info: %w", err))
	}
	st := &p.status.KubeadmPhase.BootstrapToken
	combined := tenantpki.Checksum(map[string][]byte{"rbac": []byte(p.bootstrapTokenSum), "cluster-info": []byte(sum)})
	if st.Checksum != combined {
		st.LastUpdate = metav1.NewTime(p.now)
	}
	st.Checksum = combined
	return nil
}
