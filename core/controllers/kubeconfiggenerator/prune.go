package kubeconfiggenerator

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
)

// prune deletes the generator's Secrets whose TCP is no longer a target: it stopped matching
// (its labels, its namespace's labels or the selectors changed), or it is deleted or being
// deleted. A paused Secret is kept.
func (r *Reconciler) prune(ctx context.Context, gen *kamajiv1alpha1.KubeconfigGenerator, targets []*kamajiv1alpha1.TenantControlPlane) error {
	keep := map[client.ObjectKey]bool{}
	for _, tcp := range targets {
		keep[client.ObjectKey{Namespace: tcp.Namespace, Name: SecretName(tcp.Name, gen.Name)}] = true
	}
	secrets := &corev1.SecretList{}
	if err := r.Client.List(ctx, secrets, client.MatchingLabels{
		kamajiv1alpha1.ManagedByLabel:           kamajiv1alpha1.ManagedByValue,
		kamajiv1alpha1.KubeconfigGeneratorLabel: gen.Name,
	}); err != nil {
		return err
	}
	for i := range secrets.Items {
		s := &secrets.Items[i]
		if keep[client.ObjectKeyFromObject(s)] || !ownedBy(s, gen) {
			continue
		}
		if _, paused := s.Annotations[kamajiv1alpha1.PausedAnnotation]; paused {
			continue
		}
		if err := apply.Delete(ctx, r.Client, s); err != nil {
			return fmt.Errorf("deleting Secret %s/%s: %w", s.Namespace, s.Name, err)
		}
		log.FromContext(ctx).Info("deleted the kubeconfig of a TenantControlPlane no longer selected", "secret", client.ObjectKeyFromObject(s))
	}
	return nil
}

// ownedBy tells whether gen is the Secret's controller, or the Secret has no controller (one
// of ours whose owner reference was removed): a Secret another object controls is left alone.
func ownedBy(s *corev1.Secret, gen *kamajiv1alpha1.KubeconfigGenerator) bool {
	for _, o := range s.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			return o.Kind == "KubeconfigGenerator" && o.Name == gen.Name
		}
	}
	return true
}
