package tenantcontrolplane

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/tenantpki"
)

// stepRotationRequest passes a rotation request on the TCP (certs.kamaji.clastix.io/rotate) on
// to each of its leaf certificate and kubeconfig Secrets, then removes it from the TCP. Each
// Secret's own request is honoured by the step that keeps the Secret and removed once the
// Secret is rewritten, so every certificate is reissued exactly once: across steps of one pass
// (one change of the pods' checksum), across a pass that stops half-way, and while the datastore
// is unreachable (its client certificate follows when the datastore answers again). The CAs and
// the service-account key are not leaves: they rotate only on their own Secret's request.
func stepRotationRequest(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionCertificatesReady
	const key = kamajiv1alpha1.RotateCertificatesAnnotation
	value, requested := p.tcp.Annotations[key]
	if !requested {
		return nil
	}
	for _, name := range rotationTargets(p.tcp.Name) {
		cur, err := r.readSecret(ctx, p, name)
		if err != nil {
			return fail(cond, ReasonCertificatesFailed, err)
		}
		if cur.obj == nil || cur.paused {
			continue // absent: issued fresh anyway; paused: kept as is
		}
		obj := cur.obj.DeepCopy()
		if !cur.rotate {
			if err := apply.SetAnnotation(ctx, r.Client, obj, key, value); err != nil {
				return fail(cond, ReasonCertificatesFailed, fmt.Errorf("passing the rotation request on to %s: %w", name, err))
			}
			r.writes.expect(client.ObjectKeyFromObject(p.tcp), name, obj.ResourceVersion)
		}
		if p.rotations == nil {
			p.rotations = map[string]*corev1.Secret{}
		}
		p.rotations[name] = obj
	}
	// The TCP object as read stays the pass's input (its status is the previous one): the
	// request is removed through a copy.
	if err := apply.RemoveAnnotation(ctx, r.Client, p.tcp.DeepCopy(), key); err != nil {
		return fail(cond, ReasonCertificatesFailed, fmt.Errorf("removing the honoured rotation request: %w", err))
	}
	delete(p.tcp.Annotations, key)
	return nil
}

// rotationTargets are the Secrets holding the TCP's leaf certificates, including those inside
// kubeconfigs. The konnectivity kubeconfig is not one: its client certificate is the
// konnectivity certificate's, and it follows it.
func rotationTargets(tcp string) []string {
	return []string{
		tenantpki.SecretName(tcp, tenantpki.APIServer),
		tenantpki.SecretName(tcp, tenantpki.APIServerKubeletClient),
		tenantpki.SecretName(tcp, tenantpki.FrontProxyClient),
		tenantpki.SecretName(tcp, tenantpki.Konnectivity),
		tenantpki.SecretName(tcp, tenantpki.Datastore),
		kubeconfig.AdminSecretName(tcp),
		kubeconfig.ControllerManagerSecretName(tcp),
		kubeconfig.SchedulerSecretName(tcp),
	}
}
