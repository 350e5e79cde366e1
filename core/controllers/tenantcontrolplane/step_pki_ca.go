package tenantcontrolplane

import (
	"bytes"
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

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
		caObj *corev1.Secret // the CA Secret, when it carries the end of an overlap
		until time.Time
	)
	data, err := ensureOne(tenantpki.CA, &p.status.Certificates.CA, func(cur ownedSecret, opts tenantpki.Options) (map[string][]byte, tenantpki.Reason, error) {
		if cur.obj != nil {
			v, endGiven := cur.obj.Annotations[tenantpki.CAPreviousUntilAnnotation]
			if endGiven {
				caObj = cur.obj
			}
			if endGiven && tenantpki.InOverlap(cur.data) {
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
		end := p.now.Add(r.caRotationOverlap())
		obj := cur.obj.DeepCopy()
		if err := apply.SetAnnotation(ctx, r.Client, obj, tenantpki.CAPreviousUntilAnnotation, end.UTC().Format(time.RFC3339)); err != nil {
			return nil, "", fmt.Errorf("recording the end of the CA overlap: %w", err)
		}
		r.secretData().Remember(obj)
		p.caRotating, caObj, until = true, obj, end
		return data, reason, nil
	})
	if err != nil {
		return nil, err
	}
	if tenantpki.InOverlap(data) {
		p.caOverlapEnd = until
		return data, nil
	}
	if caObj != nil {
		if err := apply.RemoveAnnotation(ctx, r.Client, caObj.DeepCopy(), tenantpki.CAPreviousUntilAnnotation); err != nil {
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
