package exposure

import (
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// Hostname is the Ingress or TLSRoute host: the one asked for, else <tcp>.<namespace>.
func Hostname(tcp *kamajiv1alpha1.TenantControlPlane) string {
	if in := tcp.Spec.ControlPlane.Ingress; in != nil && in.Hostname != "" {
		return in.Hostname
	}
	if gw := tcp.Spec.ControlPlane.Gateway; gw != nil && gw.Hostname != "" {
		return gw.Hostname
	}
	return fmt.Sprintf("%s.%s", tcp.Name, tcp.Namespace)
}

// Ingress routes the tenant host to the apiserver Service. TLS is passed through to the
// apiserver (it terminates with its own certificate), which ingress controllers enable through
// their own annotations: users add them with additionalMetadata.
func Ingress(tcp *kamajiv1alpha1.TenantControlPlane) *networkingv1.Ingress {
	spec := tcp.Spec.ControlPlane.Ingress
	pathType := networkingv1.PathTypePrefix
	ing := &networkingv1.Ingress{
		TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: metav1.ObjectMeta{
			Name: tcp.Name, Namespace: tcp.Namespace,
			Labels:      withExtra(Labels(tcp), spec.AdditionalMetadata.Labels),
			Annotations: spec.AdditionalMetadata.Annotations,
		},
		Spec: networkingv1.IngressSpec{
			Rules: []networkingv1.IngressRule{{
				Host: Hostname(tcp),
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{
						Path: "/", PathType: &pathType,
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
							Name: ServiceName(tcp), Port: networkingv1.ServiceBackendPort{Number: Port(tcp)},
						}},
					}},
				}},
			}},
		},
	}
	if spec.IngressClassName != "" {
		ing.Spec.IngressClassName = &spec.IngressClassName
	}
	return ing
}
