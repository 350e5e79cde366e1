package tenantcontrolplane

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/sleep"
)

// stepSleep decides whether the TCP sleeps in this pass (core/sleep's policy) and sets its
// Sleeping condition. A TCP about to sleep, or still waking, gets its wake EndpointSlice
// before the Service step drops the Service's selector, so that no connection finds the
// Service without a destination; the Deployment step then scales it to p.replicas().
func stepSleep(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionSleeping
	var prev *metav1.Condition
	if c := meta.FindStatusCondition(p.status.Conditions, cond); c != nil {
		prev = c.DeepCopy()
	}
	after, annErr := sleep.SleepAfter(p.tcp)
	inPlay := prev != nil && (prev.Status == metav1.ConditionTrue || prev.Reason == sleep.ReasonWaking)
	if after == 0 && !inPlay {
		if annErr != nil {
			p.setCondition(cond, metav1.ConditionFalse, sleep.ReasonUnavailable, annErr.Error())
		} else {
			meta.RemoveStatusCondition(&p.status.Conditions, cond)
		}
		return nil // a wake EndpointSlice left behind goes in stepWake
	}
	p.sleep.after = after
	lease := &coordinationv1.Lease{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: p.tcp.Namespace, Name: sleep.LeaseName(p.tcp.Name)}, lease)
	if err != nil && !apierrors.IsNotFound(err) {
		return fail(cond, sleep.ReasonUnavailable, fmt.Errorf("reading the activity Lease: %w", err))
	}
	can, reason, why := r.canSleep(ctx, p)
	d := sleep.Decide(sleep.Input{
		SleepAfter: after, Now: p.now, LastActivity: sleep.LastActivity(lease), Previous: prev, CanSleep: can,
		// Woken whatever its activity: the annotation is gone, the spec scales it to zero (then it
		// sleeps as the spec says), or a migration must run it.
		MustWake: after == 0 || ptr.Deref(p.tcp.Spec.ControlPlane.Deployment.Replicas, 2) == 0 || migrating(p.status.Storage),
	})
	p.sleep.phase = d.Phase
	switch d.Phase {
	case sleep.Asleep:
		p.setCondition(cond, metav1.ConditionTrue, sleep.ReasonIdle,
			fmt.Sprintf("no request from outside the control plane for %s: scaled to zero; the next connection to its endpoint wakes it", after))
	case sleep.Waking:
		p.setCondition(cond, metav1.ConditionFalse, sleep.ReasonWaking,
			"woken: the control plane scales back up; the manager holds connections until an apiserver is ready")
	default:
		if can {
			p.setCondition(cond, metav1.ConditionFalse, sleep.ReasonAwake, awakeMessage(after))
			p.requeue(d.SleepIn)
		} else {
			p.setCondition(cond, metav1.ConditionFalse, reason, why)
		}
	}
	if d.Phase == sleep.Awake {
		return nil
	}
	if err := r.ensureWakeSlice(ctx, p); err != nil {
		return fail(cond, sleep.ReasonUnavailable, fmt.Errorf("the wake EndpointSlice: %w", err))
	}
	return nil
}

// awakeMessage is the Sleeping condition's message of an awake TCP that may sleep.
func awakeMessage(after time.Duration) string {
	return fmt.Sprintf("sleeps after %s without requests from outside the control plane", after)
}

// canSleep tells whether the TCP may go to sleep now and, when not, the reason and message of
// its Sleeping condition: SleepUnavailable for what the TCP or the manager must change,
// Awake for a passing state.
func (r *Reconciler) canSleep(ctx context.Context, p *pass) (bool, string, string) {
	if ptr.Deref(p.tcp.Spec.ControlPlane.Deployment.Replicas, 2) == 0 {
		return false, sleep.ReasonAwake, "does not sleep on its own: its spec scales it to zero"
	}
	wh, err := r.tenantWebhook()
	if err != nil {
		return false, sleep.ReasonUnavailable, "cannot sleep: its apiserver has no way to report activity to the manager: " + err.Error()
	}
	p.sleep.activity = &wh
	if r.Options.ManagerNamespace != "" && p.tcp.Namespace == r.Options.ManagerNamespace {
		return false, sleep.ReasonUnavailable, "cannot sleep: it is in the manager's namespace, whose EndpointSlices the manager does not watch for wake addresses"
	}
	addrs, err := r.wakeAddresses(ctx)
	p.sleep.wakeAddresses = addrs
	switch {
	case err != nil:
		return false, sleep.ReasonUnavailable, "cannot sleep: " + err.Error()
	case len(addrs) == 0:
		return false, sleep.ReasonAwake, "does not sleep now: no ready manager pod to hold its connections while it sleeps"
	case migrating(p.status.Storage):
		return false, sleep.ReasonAwake, "does not sleep now: a datastore migration is under way"
	}
	st := p.tcp.Status.Kubernetes.Version.Status
	if st == nil || (*st != kamajiv1alpha1.VersionReady && *st != kamajiv1alpha1.VersionWriteLimited) {
		return false, sleep.ReasonAwake, "does not sleep now: it is not Ready"
	}
	return true, "", ""
}
