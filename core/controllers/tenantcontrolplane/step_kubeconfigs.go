package tenantcontrolplane

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/exposure"
	"github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/tenantpki"
)

const (
	ReasonKubeconfigsFailed = "KubeconfigsFailed"
	ReasonKubeconfigsReady  = "KubeconfigsReady"
)

// stepKubeconfigs keeps the admin kubeconfigs (admin.conf and super-admin.conf for the public
// endpoint, the .svc variants for consumers inside the admin cluster) and the controller-manager
// and scheduler kubeconfigs (loopback: they share the apiserver's pod).
func stepKubeconfigs(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionKubeconfigsReady
	clk := clock(r.now)
	opts := tenantpki.Options{RenewBefore: r.Options.CertificateExpirationDeadline}
	port := exposure.Port(p.tcp)
	cluster := p.tcp.Name
	kc := &p.status.KubeConfig

	for _, k := range []struct {
		name   string
		st     *kamajiv1alpha1.KubeconfigStatus
		mounts bool
		ensure func(cur map[string][]byte, o tenantpki.Options) (map[string][]byte, tenantpki.Reason, error)
	}{
		{kubeconfig.AdminSecretName(p.tcp.Name), &kc.Admin, false, func(cur map[string][]byte, o tenantpki.Options) (map[string][]byte, tenantpki.Reason, error) {
			return kubeconfig.EnsureAdmin(cur, p.ca, cluster, kubeconfig.AdminServers{
				Public:  kubeconfig.PublicServer(p.endpoint),
				Service: kubeconfig.ServiceServer(exposure.ServiceName(p.tcp), p.tcp.Namespace, port),
			}, o, clk)
		}},
		{kubeconfig.ControllerManagerSecretName(p.tcp.Name), &kc.ControllerManager, true, func(cur map[string][]byte, o tenantpki.Options) (map[string][]byte, tenantpki.Reason, error) {
			return kubeconfig.EnsureControllerManager(cur, p.ca, cluster, kubeconfig.LocalServer(port), o, clk)
		}},
		{kubeconfig.SchedulerSecretName(p.tcp.Name), &kc.Scheduler, true, func(cur map[string][]byte, o tenantpki.Options) (map[string][]byte, tenantpki.Reason, error) {
			return kubeconfig.EnsureScheduler(cur, p.ca, cluster, kubeconfig.LocalServer(port), o, clk)
		}},
	} {
		cur, err := r.readSecret(ctx, p, k.name)
		if err != nil {
			return fail(cond, ReasonKubeconfigsFailed, err)
		}
		o := opts
		o.Force = cur.rotate
		data, reason, err := k.ensure(cur.data, o)
		if err != nil {
			return fail(cond, ReasonKubeconfigsFailed, fmt.Errorf("%s: %w", k.name, err))
		}
		if err := r.writeSecret(ctx, p, cur, data, reason); err != nil {
			return fail(cond, ReasonKubeconfigsFailed, err)
		}
		if !k.mounts {
			// The admin kubeconfig is not mounted by the pods: it must not roll them. The
			// tenant client is built from it.
			p.adminKubeconfig = p.secrets[k.name]
			delete(p.secrets, k.name)
		}
		written := data
		if cur.paused {
			written = cur.data
		}
		sum := tenantpki.Checksum(written)
		if k.st.Checksum != sum || k.st.SecretName != k.name {
			k.st.LastUpdate = metav1.NewTime(p.now)
		}
		k.st.SecretName, k.st.Checksum = k.name, sum
	}
	p.setCondition(cond, metav1.ConditionTrue, ReasonKubeconfigsReady, "admin, controller-manager and scheduler kubeconfigs are current")
	return nil
}
