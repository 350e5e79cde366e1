package tenantcontrolplane

import (
	"bytes"
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/tenantpki"
)

// ensureFunc computes one PKI Secret's data from what it holds now.
type ensureFunc func(cur ownedSecret, opts tenantpki.Options) (map[string][]byte, tenantpki.Reason, error)

// DefaultCARotationOverlap is how long the previous CA stays trusted after a CA rotation when
// the manager is not told otherwise (--ca-rotation-overlap).
const DefaultCARotationOverlap = 24 * time.Hour

// ensureCA keeps the tenant CA (tenantpki.EnsureCAWithOverlap). When a rotation starts, the
// end of the overlap is written on the CA Secret before the new CA is: a pass that stops
// between the two writes leaves the request in place and starts again, while the other order
// would leave an overlap without an end, which ends at once. When the overlap ends, the
// annotation goes.
func (r *Reconciler) ensureCA(ctx context.Context, p *pass, ensureOne func(tenantpki.Kind, *kamajiv1alpha1.CertificatePrivateKeyPairStatus, ensureFunc) (map[string][]byte, error)) (map[string][]byte, error) {
	var (
		name     = tenantpki.SecretName(p.tcp.Name, tenantpki.CA)
		endGiven bool
		until    time.Time
	)
	data, err := ensureOne(tenantpki.CA, &p.status.Certificates.CA, func(cur ownedSecret, opts tenantpki.Options) (map[string][]byte, tenantpki.Reason, error) {
		if cur.obj != nil {
			var v string
			if v, endGiven = cur.obj.Annotations[tenantpki.CAPreviousUntilAnnotation]; endGiven && tenantpki.InOverlap(cur.data) {
				t, err := tenantpki.ParseOverlapEnd(v)
				if err != nil {
					return nil, "", err
				}
				until = t
			}
		}
		data, reason, err := tenantpki.EnsureCAWithOverlap(cur.data, until, opts, clock(r.now))
		if err != nil || cur.paused || !reason.Reissued() || !tenantpki.InOverlap(data) {
			return data, reason, err
		}
		// A new CA with the old one still trusted: its end first.
		end := p.now.Add(r.caRotationOverlap()).UTC().Format(time.RFC3339)
		obj := cur.obj.DeepCopy()
		if err := apply.SetAnnotation(ctx, r.Client, obj, tenantpki.CAPreviousUntilAnnotation, end); err != nil {
			return nil, "", fmt.Errorf("recording the end of the CA overlap: %w", err)
		}
		p.caRotating, endGiven, until = true, true, p.now.Add(r.caRotationOverlap())
		return data, reason, nil
	})
	if err != nil {
		return nil, err
	}
	if tenantpki.InOverlap(data) {
		p.caOverlapEnd = until
		return data, nil
	}
	if endGiven {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.tcp.Namespace,
			Annotations: map[string]string{tenantpki.CAPreviousUntilAnnotation: ""}}}
		if err := apply.RemoveAnnotation(ctx, r.Client, s, tenantpki.CAPreviousUntilAnnotation); err != nil {
			return nil, fmt.Errorf("removing the end of the finished CA overlap: %w", err)
		}
	}
	return data, nil
}

func (r *Reconciler) caRotationOverlap() time.Duration {
	if r.Options.CARotationOverlap > 0 {
		return r.Options.CARotationOverlap
	}
	return DefaultCARotationOverlap
}

// chained appends the cross-signed CA (tenantpki.KeyCACrossCert) to the certificate under
// certKey, so that clients and kubelets holding only the previous CA still verify it. A
// certificate kept as it was but with another chain is rewritten (Repaired).
func chained(p *pass, certKey string, ensure ensureFunc) ensureFunc {
	return func(cur ownedSecret, opts tenantpki.Options) (map[string][]byte, tenantpki.Reason, error) {
		data, reason, err := ensure(cur, opts)
		if err != nil {
			return nil, "", err
		}
		data[certKey] = tenantpki.WithChain(data[certKey], p.caCross)
		if !reason.Changed() && !bytes.Equal(data[certKey], cur.data[certKey]) {
			reason = tenantpki.Repaired
		}
		return data, reason, nil
	}
}
