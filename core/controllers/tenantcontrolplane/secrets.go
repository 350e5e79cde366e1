package tenantcontrolplane

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/exposure"
	"github.com/openhcp/kamaji/core/secretdata"
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

// How much of our Secrets' data a controller keeps in memory: about two hundred tenants' worth,
// more than ten workers provisioning or changing tenants go through between two passes of the
// same tenant, and only while it is used (a thousand TCPs created at once see their second pass
// within two minutes): a tenant at rest needs none.
const (
	keptSecretData = 2048
	keptSecretTTL  = 2 * time.Minute
)

// secretData gives our Secrets' data: the cache keeps their metadata only (manager/cachetransform.go).
func (r *Reconciler) secretData() *secretdata.Reader {
	r.dataOnce.Do(func() {
		api := client.Reader(r.Client)
		if r.APIReader != nil {
			api = r.APIReader
		}
		r.data = secretdata.New(api, keptSecretData, keptSecretTTL)
	})
	return r.data
}

// readSecret reads one of our Secrets from the (label-restricted) cache, or from the API server
// when the cache may be stale: it has not shown our last write yet, or it shows a rotation
// request that may already be honoured. Its data comes from secretData.
func (r *Reconciler) readSecret(ctx context.Context, p *pass, name string) (ownedSecret, error) {
	out := ownedSecret{name: name}
	if s, ok := p.rotations[name]; ok {
		// A rotation request this pass passed on: the object the patch answered holds it.
		out.obj, out.data, out.rotate = s, s.Data, true
		_, out.paused = s.Annotations[kamajiv1alpha1.PausedAnnotation]
		return out, nil
	}
	tcpKey := client.ObjectKeyFromObject(p.tcp)
	key := client.ObjectKey{Namespace: p.tcp.Namespace, Name: name}
	s := &corev1.Secret{}
	found := true
	if err := r.Client.Get(ctx, key, s); err != nil {
		if !apierrors.IsNotFound(err) {
			return out, err
		}
		found = false
	}
	written, pending := r.writes.expected(tcpKey, name)
	if pending && found && s.ResourceVersion == written {
		r.writes.done(tcpKey, name) // the cache caught up
		pending = false
	}
	_, rotate := s.Annotations[kamajiv1alpha1.RotateCertificatesAnnotation]
	if (pending || (found && rotate)) && r.APIReader != nil {
		fresh := &corev1.Secret{}
		if err := r.APIReader.Get(ctx, key, fresh); err != nil {
			if !apierrors.IsNotFound(err) {
				return out, err
			}
			r.writes.done(tcpKey, name) // gone since
			return out, nil
		}
		if pending && fresh.ResourceVersion != written {
			r.writes.done(tcpKey, name) // changed since our write: the cache will show that
		}
		s, found = fresh, true
	}
	if found {
		if err := r.secretData().Fill(ctx, s); err != nil {
			if !apierrors.IsNotFound(err) {
				return out, err
			}
			found = false // deleted since the cache saw it
		}
	}
	if !found {
		return out, nil
	}
	out.obj, out.data = s, s.Data
	_, out.paused = s.Annotations[kamajiv1alpha1.PausedAnnotation]
	_, out.rotate = s.Annotations[kamajiv1alpha1.RotateCertificatesAnnotation]
	return out, nil
}

// writeSecret declares the Secret's whole content, owned by the TCP, unless it is paused or
// nothing changed. A rotation request on it is then honoured: it is removed, even from a Secret
// that has nothing to reissue (the service-account key is never rotated by request), so that it
// is neither left pending nor honoured twice.
func (r *Reconciler) writeSecret(ctx context.Context, p *pass, cur ownedSecret, data map[string][]byte, reason tenantpki.Reason) error {
	if cur.paused {
		p.addSecret(cur.name, cur.data)
		return nil
	}
	if cur.data == nil || reason.Changed() {
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
		r.secretData().Remember(s)
		r.writes.expect(client.ObjectKeyFromObject(p.tcp), cur.name, s.ResourceVersion)
	} else {
		data = cur.data
	}
	if cur.rotate && cur.obj != nil {
		obj := cur.obj.DeepCopy()
		if err := apply.RemoveAnnotation(ctx, r.Client, obj, kamajiv1alpha1.RotateCertificatesAnnotation); err != nil {
			return err
		}
		r.secretData().Remember(obj)
		r.writes.expect(client.ObjectKeyFromObject(p.tcp), cur.name, obj.ResourceVersion)
		delete(p.rotations, cur.name)
	}
	p.addSecret(cur.name, data)
	return nil
}
