package tenantcontrolplane

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/sleep"
)

// startPhase is where a control plane's start stands, from its Deployment.
type startPhase int

const (
	// startNone: no replica is wanted, or one is available: nothing is starting.
	startNone startPhase = iota
	// startUnderway: the Deployment is scaled up and no replica is available yet.
	startUnderway
	// startNeeded: replicas are wanted and the Deployment has none (absent, asleep, or waiting
	// its turn).
	startNeeded
)

// startPhaseOf tells where the start stands; cur is the Deployment (nil: none yet).
func startPhaseOf(cur *appsv1.Deployment, wanted int32) startPhase {
	switch {
	case wanted == 0:
		return startNone
	case cur == nil:
		return startNeeded
	case cur.Status.AvailableReplicas > 0:
		return startNone
	case ptr.Deref(cur.Spec.Replicas, 1) > 0:
		return startUnderway
	}
	return startNeeded
}

// startSlot returns the replicas the Deployment step declares: the wanted ones, or none while
// the start waits for a slot of the manager's start queue (r.Starts), which enqueues the TCP
// when it has one; the pass then says why. A running control plane never waits (a rollout
// keeps its available replicas).
func (r *Reconciler) startSlot(ctx context.Context, p *pass, wanted int32) (int32, error) {
	if r.Starts == nil {
		return wanted, nil
	}
	key := client.ObjectKeyFromObject(p.tcp)
	var cur *appsv1.Deployment
	if wanted > 0 {
		dep := &appsv1.Deployment{}
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: p.tcp.Namespace, Name: p.tcp.Name}, dep)
		switch {
		case err == nil:
			cur = dep
		case !apierrors.IsNotFound(err):
			return 0, fail(kamajiv1alpha1.ConditionControlPlaneAvailable, ReasonDeploymentFailed, err)
		}
	}
	switch startPhaseOf(cur, wanted) {
	case startNone:
		r.Starts.Done(key)
		return wanted, nil
	case startUnderway:
		r.Starts.Started(key)
		return wanted, nil
	}
	d := r.Starts.Ask(key, p.sleep.phase == sleep.Waking)
	if d.Start {
		return wanted, nil
	}
	p.startWaiting = d.Message()
	return 0, nil
}
