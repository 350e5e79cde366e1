package manager

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/openhcp/kamaji/core/metrics"
	"github.com/openhcp/kamaji/core/secretdata"
)

// What the cache keeps of the objects it holds. With a thousand tenants the cache is most of
// the manager's memory, so it keeps only what the core reads from it; the rest it reads from
// the API when it needs it (rarely), or declares whole without reading (server-side apply).

// stripManagedFields drops managedFields, the largest part of an object written by
// server-side apply. The core reads them only on objects an apply returns (the addons' ports
// step, on the Service), never from the cache.
var stripManagedFields = cache.TransformStripManagedFields()

// slimDeployment keeps a control-plane Deployment's metadata (the storage record is an
// annotation), replicas, selector, template metadata and status, and drops its pod spec: the
// core declares the Deployment whole on every pass without reading it, and the one reader of
// the pod spec (the migration's freeze lift) reads it from the API.
func slimDeployment(o any) (any, error) {
	o, err := stripManagedFields(o)
	if err != nil {
		return o, err
	}
	if d, ok := o.(*appsv1.Deployment); ok {
		d.Spec.Template.Spec = corev1.PodSpec{}
	}
	return o, nil
}

// slimSecret drops the data of the Secrets we own (certificates, keys, kubeconfigs), a third
// of the cache at a thousand tenants: the controllers read it from the API when they need it
// and keep what they read or wrote lately (core/secretdata). The certificate metrics read the
// expiries first.
var slimSecret = secretdata.Strip(metrics.ObserveSecret)

// slimPod keeps a control-plane pod's metadata and the parts of its status that say why it
// does not run (scheduling, the containers' states): the TCP controller reads nothing else of
// it from the cache (the migration lists pods from the API).
func slimPod(o any) (any, error) {
	o, err := stripManagedFields(o)
	if err != nil {
		return o, err
	}
	if p, ok := o.(*corev1.Pod); ok {
		p.Spec = corev1.PodSpec{}
		st := corev1.PodStatus{Phase: p.Status.Phase}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled {
				st.Conditions = append(st.Conditions, corev1.PodCondition{Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message})
			}
		}
		slim := func(in []corev1.ContainerStatus) []corev1.ContainerStatus {
			out := make([]corev1.ContainerStatus, len(in))
			for i, c := range in {
				out[i] = corev1.ContainerStatus{Name: c.Name, State: c.State, LastTerminationState: c.LastTerminationState, Ready: c.Ready, RestartCount: c.RestartCount}
			}
			return out
		}
		st.InitContainerStatuses, st.ContainerStatuses = slim(p.Status.InitContainerStatuses), slim(p.Status.ContainerStatuses)
		p.Status = st
	}
	return o, nil
}
