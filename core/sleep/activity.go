package sleep

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
)

// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch

// holderIdentity is the Lease holder: the manager as a whole, whichever replica wrote it.
const holderIdentity = "kamaji"

// Toucher records outside activity on a TCP. force writes even if the last write is recent: a
// wake must be later than the moment the TCP fell asleep.
type Toucher interface {
	Touch(ctx context.Context, key types.NamespacedName, force bool) error
}

// Recorder writes the activity Lease of TCPs that opted in to sleep. Each manager replica has
// its own; they may each write the Lease, which only moves renewTime forward a little sooner.
type Recorder struct {
	// Client reads TCPs (from the cache) and applies Leases.
	Client client.Client
	// Now is the clock; nil is time.Now.
	Now func() time.Time

	mu      sync.Mutex
	written map[types.NamespacedName]time.Time // last successful write per TCP
}

var _ Toucher = (*Recorder)(nil)

// Touch records activity on the TCP key now. It does nothing for a TCP that is gone, being
// deleted or not opted in (or whose annotation is invalid: the controller reports that), and,
// unless force, when this Recorder wrote the Lease less than TouchInterval ago.
func (r *Recorder) Touch(ctx context.Context, key types.NamespacedName, force bool) error {
	tcp := &kamajiv1alpha1.TenantControlPlane{}
	if err := r.Client.Get(ctx, key, tcp); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(key)
			return nil
		}
		return fmt.Errorf("activity of %s: read the TenantControlPlane: %w", key, err)
	}
	if !tcp.DeletionTimestamp.IsZero() {
		r.forget(key)
		return nil
	}
	after, err := SleepAfter(tcp)
	if err != nil || after == 0 {
		return nil
	}
	now := r.now()
	if !force && r.recent(key, now, TouchInterval(after)) {
		return nil
	}
	if err := apply.Apply(ctx, r.Client, ActivityLease(tcp, now)); err != nil {
		return fmt.Errorf("activity of %s: apply Lease %s: %w", key, LeaseName(tcp.Name), err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.written == nil {
		r.written = map[types.NamespacedName]time.Time{}
	}
	// Concurrent touches may finish out of order: keep the latest.
	if now.After(r.written[key]) {
		r.written[key] = now
	}
	return nil
}

func (r *Recorder) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// recent tells whether this Recorder wrote key's Lease less than interval before now.
func (r *Recorder) recent(key types.NamespacedName, now time.Time, interval time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	last, ok := r.written[key]
	return ok && now.Sub(last) < interval
}

// forget drops a TCP that went away, so the map does not grow with deleted TCPs.
func (r *Recorder) forget(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.written, key)
}

// ActivityLease declares the TCP's activity Lease, renewed at now. It is owned by the TCP (not
// as controller) so it goes with it. kubectl kamaji wake applies it too, to wake a TCP asleep
// on its own.
func ActivityLease(tcp *kamajiv1alpha1.TenantControlPlane, now time.Time) *coordinationv1.Lease {
	holder := holderIdentity
	renew := metav1.NewMicroTime(now)
	return &coordinationv1.Lease{
		TypeMeta: metav1.TypeMeta{APIVersion: "coordination.k8s.io/v1", Kind: "Lease"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      LeaseName(tcp.Name),
			Namespace: tcp.Namespace,
			Labels: map[string]string{
				ActivityLabel:                 tcp.Name,
				kamajiv1alpha1.ManagedByLabel: kamajiv1alpha1.ManagedByValue,
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: kamajiv1alpha1.GroupVersion.String(),
				Kind:       "TenantControlPlane",
				Name:       tcp.Name,
				UID:        tcp.UID,
			}},
		},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, RenewTime: &renew},
	}
}

// LastActivity is the time of the TCP's last recorded outside request: zero when none.
func LastActivity(l *coordinationv1.Lease) time.Time {
	if l == nil || l.Spec.RenewTime == nil {
		return time.Time{}
	}
	return l.Spec.RenewTime.Time
}
