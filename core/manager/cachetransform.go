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
