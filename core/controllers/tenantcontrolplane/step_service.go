package tenantcontrolplane

import (
	"context"
	"errors"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/exposure"
	"github.com/openhcp/kamaji/core/sleep"
)

// Condition reasons of the Service step.
const (
	ReasonServiceFailed    = "ServiceApplyFailed"
	ReasonEndpointPending  = "EndpointPending"
	ReasonLoadBalancerHost = "LoadBalancerHostnameUnsupported"
	ReasonServiceReady     = "ServiceReady"
	// endpointPendingRecheck is a safety net only: the Service watch brings us back first.
	endpointPendingRecheck = time.Minute
)

// stepService applies the Service and derives status.controlPlaneEndpoint from it.
func stepService(ctx context.Context, r *Reconciler, p *pass) error {
	if err := applyService(ctx, r, p); err != nil {
		return fail(kamajiv1alpha1.ConditionServiceReady, ReasonServiceFailed, err)
	}
	svc := p.service
	p.status.Kubernetes.Service = kamajiv1alpha1.KubernetesServiceStatus{
		ServiceStatus: svc.Status, Name: svc.Name, Namespace: svc.Namespace, Port: exposure.Port(p.tcp),
	}
	endpoint, err := exposure.Endpoint(p.tcp, svc)
	switch {
	case errors.Is(err, exposure.ErrLoadBalancerHostname):
		return fail(kamajiv1alpha1.ConditionServiceReady, ReasonLoadBalancerHost, err)
	case err != nil:
		// Not a failure: the Service watch brings us back when the address arrives.
		e := fail(kamajiv1alpha1.ConditionServiceReady, ReasonEndpointPending, err)
		e.retryAfter = endpointPendingRecheck
		return e
	}
	p.endpoint = endpoint
	p.status.ControlPlaneEndpoint = endpoint
	p.setCondition(kamajiv1alpha1.ConditionServiceReady, metav1.ConditionTrue, ReasonServiceReady, "the apiserver is exposed at "+endpoint)
	return nil
}

// applyService declares the TCP's Service. While the TCP sleeps or wakes its selector matches
// no pod (sleep.SleepingSelectorLabel is on none): the EndpointSlice controller empties its
// slices, and the wake EndpointSlice (stepSleep) leads the Service to the manager instead. (A
// Service without a selector would keep its last EndpointSlices, listing the pods going away,
// and have them mirrored from its Endpoints.)
func applyService(ctx context.Context, r *Reconciler, p *pass) error {
	svc := exposure.Service(p.tcp, nil)
	if p.sleep.phase == sleep.Asleep || p.sleep.phase == sleep.Waking {
		svc.Spec.Selector[sleep.SleepingSelectorLabel] = "true"
	}
	owned(p.tcp, svc)
	if err := apply.Apply(ctx, r.Client, svc); err != nil {
		return err
	}
	p.service = svc
	return nil
}
