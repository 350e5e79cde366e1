package tenantcontrolplane

import (
	"context"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/exposure"
)

const ReasonExposureFailed = "ExposureFailed"

// stepExposure applies the Ingress or the TLSRoute the spec asks for and removes the one it no
// longer asks for.
func stepExposure(ctx context.Context, r *Reconciler, p *pass) error {
	cp := p.tcp.Spec.ControlPlane
	ingress := &networkingv1.Ingress{}
	ingress.Name, ingress.Namespace = p.tcp.Name, p.tcp.Namespace
	route := exposure.TLSRoute(&kamajiv1alpha1.TenantControlPlane{ObjectMeta: p.tcp.ObjectMeta, Spec: kamajiv1alpha1.TenantControlPlaneSpec{
		ControlPlane: kamajiv1alpha1.ControlPlane{Gateway: &kamajiv1alpha1.GatewaySpec{}}}})

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

	if cp.Gateway != nil {
		tr := exposure.TLSRoute(p.tcp)
		owned(p.tcp, tr)
		if err := apply.Apply(ctx, r.Client, tr); err != nil {
			return fail(kamajiv1alpha1.ConditionServiceReady, ReasonExposureFailed, err)
		}
		p.status.Kubernetes.Gateway = &kamajiv1alpha1.KubernetesGatewayStatus{Name: tr.GetName(), Namespace: tr.GetNamespace()}
	} else if p.status.Kubernetes.Gateway != nil {
		if err := deleteIgnoringAbsent(ctx, r.Client, route); err != nil && !meta.IsNoMatchError(err) {
			return fail(kamajiv1alpha1.ConditionServiceReady, ReasonExposureFailed, err)
		}
		p.status.Kubernetes.Gateway = nil
	}
	return nil
}

func deleteIgnoringAbsent(ctx context.Context, c client.Client, obj client.Object) error {
	if u, ok := obj.(*unstructured.Unstructured); ok && u.GetName() == "" {
		return nil
	}
	return apply.Delete(ctx, c, obj)
}
