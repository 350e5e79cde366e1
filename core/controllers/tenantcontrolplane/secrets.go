package tenantcontrolplane

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/exposure"
	"github.com/openhcp/kamaji/core/tenantpki"
)

// ownedSecret is one of the TCP's Secrets as read at the start of its step.
type ownedSecret struct {
	name   string
	data   map[string][]byte // nil when absent
	paused bool              // kamaji.clastix.io/paused: keep as is, never rewrite
	rotate bool              // certs.kamaji.clastix.io/rotate: reissue now
	obj    *corev1.Secret
}

// readSecret reads one of our Secrets from the (label-restricted) cache.
func (r *Reconciler) readSecret(ctx context.Context, p *pass, name string) (ownedSecret, error) {
	s := &corev1.Secret{}
	out := ownedSecret{name: name}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: p.tcp.Namespace, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return out, nil
		}
		return out, err
	}
	if _, rotate := s.Annotations[kamajiv1alpha1.RotateCertificatesAnnotation]; rotate && r.APIReader != nil {
		// A rotation request must be current: the cache may still show one already honoured.
		fresh := &corev1.Secret{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(s), fresh); err != nil {
			return out, client.IgnoreNotFound(err)
		}
		s = fresh
	}
	out.obj, out.data = s, s.Data
	_, out.paused = s.Annotations[kamajiv1alpha1.PausedAnnotation]
	_, out.rotate = s.Annotations[kamajiv1alpha1.RotateCertificatesAnnotation]
	return out, nil
}

// writeSecret declares the Secret's whole content, owned by the TCP, unless it is paused or
// nothing changed; a honoured rotation request is then removed from it.
func (r *Reconciler) writeSecret(ctx context.Context, p *pass, cur ownedSecret, data map[string][]byte, reason tenantpki.Reason) error {
	if cur.paused {
		p.addSecret(cur.name, cur.data)
		return nil
	}
	if cur.data != nil && !reason.Changed() {
		p.addSecret(cur.name, cur.data)
		return nil
	}
	s := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: cur.name, Namespace: p.tcp.Namespace, Labels: exposure.Labels(p.tcp)},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
	owned(p.tcp, s)
	if err := apply.Apply(ctx, r.Client, s); err != nil {
		return err
	}
	if cur.rotate && cur.obj != nil {
		if err := apply.RemoveAnnotation(ctx, r.Client, cur.obj, kamajiv1alpha1.RotateCertificatesAnnotation); err != nil {
			return err
		}
	}
	p.addSecret(cur.name, data)
	return nil
}
