package tenantcontrolplane

import (
	"context"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/exposure"
)

const ReasonExposureFailed = "ExposureFailed"

// stepExposure applies the Ingress or the TLSRoutes the spec asks for and removes those it no
// longer asks for. TLSRoutes are written at the version the admin cluster serves (v1, else
// v1alpha2); with konnectivity enabled a second route, <tcp>-konnectivity, takes its agents to
// the konnectivity server.
func stepExposure(ctx context.Context, r *Reconciler, p *pass) error {
	cp := p.tcp.Spec.ControlPlane
	ingress := &networkingv1.Ingress{}
	ingress.Name, ingress.Namespace = p.tcp.Name, p.tcp.Namespace

	if cp.Ingress != nil {
		ing := exposure.Ingress(p.tcp)
		owned(p.tcp, ing)
		if err := apply.Apply(ctx, r.Client, ing); err != nil {
			return fail(kamajiv1alpha1.ConditionServiceReady, ReasonExposureFailed, err)
		}
		p.status.Kubernetes.Ingress = &kamajiv1alpha1.KubernetesIngressStatus{IngressStatus: ing.Status, Name: ing.Name, Namespace: ing.Namespace}
	} else if p.status.Kubernetes.Ingress != nil || r.Client.Get(ctx, client.ObjectKeyFromObject(ingress), &networkingv1.Ingress{}) == nil {
		if err := deleteIgnoringAbsent(ctx, r.Client, ingress); err != nil {
			return fail(kamajiv1alpha1.ConditionServiceReady, ReasonExposureFailed, err)
		}
		p.status.Kubernetes.Ingress = nil
	}

	if err := exposeGateway(ctx, r, p); err != nil {
		return fail(kamajiv1alpha1.ConditionServiceReady, ReasonExposureFailed, err)
	}
	return nil
}

// exposeGateway keeps the TLSRoutes: the apiserver's, and konnectivity's when it is enabled.
// Each applied route is recorded (status.kubernetesResources.gateway and
// status.addons.konnectivity.gateway), which is how a route no longer asked for is found.
func exposeGateway(ctx context.Context, r *Reconciler, p *pass) error {
	konnectivity := &p.status.Addons.Konnectivity.Gateway
	wanted := p.tcp.Spec.ControlPlane.Gateway != nil
	if !wanted && p.status.Kubernetes.Gateway == nil && *konnectivity == nil {
		return nil
	}
	gvk, err := exposure.ServedTLSRouteVersion(r.Client.RESTMapper())
	switch {
	case err != nil && !wanted && meta.IsNoMatchError(err):
		// The Gateway API is gone, and the routes with it.
		p.status.Kubernetes.Gateway, *konnectivity = nil, nil
		return nil
	case meta.IsNoMatchError(err):
		return fmt.Errorf("the admin cluster serves no TLSRoute version the core writes (gateway.networking.k8s.io %v): install the Gateway API CRDs", exposure.TLSRouteVersions)
	case err != nil:
		return fmt.Errorf("TLSRoute: %w", err)
	}

	if !wanted {
		if st := p.status.Kubernetes.Gateway; st != nil {
			if err := deleteOwnedRoute(ctx, r, p.tcp, routeRef(gvk, p.tcp.Namespace, st.Name)); err != nil {
				return err
			}
			p.status.Kubernetes.Gateway = nil
		}
	} else {
		route, err := applyRoute(ctx, r, p, exposure.TLSRoute(p.tcp), gvk)
		if err != nil {
			return err
		}
		st, err := gatewayStatus(ctx, r.uncached(), route)
		if err != nil {
			return err
		}
		p.status.Kubernetes.Gateway = st
	}

	if k := exposure.KonnectivityTLSRoute(p.tcp); wanted && k != nil {
		route, err := applyRoute(ctx, r, p, k, gvk)
		if err != nil {
			return err
		}
		st, err := gatewayStatus(ctx, r.uncached(), route)
		if err != nil {
			return err
		}
		*konnectivity = st
	} else if *konnectivity != nil {
		if err := deleteOwnedRoute(ctx, r, p.tcp, routeRef(gvk, p.tcp.Namespace, (*konnectivity).Name)); err != nil {
			return err
		}
		*konnectivity = nil
	}
	return nil
}

// applyRoute applies a route at the served version and returns it as the apiserver answered.
func applyRoute(ctx context.Context, r *Reconciler, p *pass, route *gatewayv1.TLSRoute, gvk schema.GroupVersionKind) (*unstructured.Unstructured, error) {
	u, err := exposure.TLSRouteAt(route, gvk)
	if err != nil {
		return nil, err
	}
	owned(p.tcp, u)
	if err := apply.Apply(ctx, r.Client, u); err != nil {
		return nil, fmt.Errorf("TLSRoute %s: %w", u.GetName(), err)
	}
	return u, nil
}

// uncached reads what the core does not own (Gateways) without starting an informer on it.
func (r *Reconciler) uncached() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

// deleteOwnedRoute deletes the route if it exists and the TCP controls it: a user's route of
// the same name is left alone.
func deleteOwnedRoute(ctx context.Context, r *Reconciler, tcp *kamajiv1alpha1.TenantControlPlane, route *unstructured.Unstructured) error {
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(route), route); err != nil {
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			return nil
		}
		return fmt.Errorf("TLSRoute %s: %w", route.GetName(), err)
	}
	if !metav1.IsControlledBy(route, tcp) {
		return nil
	}
	return deleteIgnoringAbsent(ctx, r.Client, route)
}

func routeRef(gvk schema.GroupVersionKind, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

func deleteIgnoringAbsent(ctx context.Context, c client.Client, obj client.Object) error {
	if u, ok := obj.(*unstructured.Unstructured); ok && u.GetName() == "" {
		return nil
	}
	return apply.Delete(ctx, c, obj)
}
