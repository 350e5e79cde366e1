package exposure

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1alpha2 "sigs.k8s.io/gateway-api/apis/v1alpha2"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// TLSRouteGK is the Gateway API kind that exposes a tenant through a Gateway.
var TLSRouteGK = schema.GroupKind{Group: gatewayv1.GroupName, Kind: "TLSRoute"}

// TLSRouteVersions are the TLSRoute versions the core writes, preferred first: v1, which the
// standard channel serves from Gateway API v1.5 (and the only one it serves), then v1alpha2 for
// admin clusters whose older CRDs serve only that.
var TLSRouteVersions = []string{gatewayv1.GroupVersion.Version, gatewayv1alpha2.GroupVersion.Version}

// The Gateway listeners the routes attach to when konnectivity is enabled: both routes carry
// the same host name (SNI), so each names its listener (parentRefs[].sectionName).
const (
	APIServerListener    = "kube-apiserver"
	KonnectivityListener = "konnectivity-server"
	// DefaultKonnectivityPort is spec.addons.konnectivity.server.port's CRD default.
	DefaultKonnectivityPort int32 = 8132
)

// KonnectivityTLSRouteName is the second route, for the konnectivity agents: <tcp>-konnectivity.
func KonnectivityTLSRouteName(tcp *kamajiv1alpha1.TenantControlPlane) string {
	return tcp.Name + "-konnectivity"
}

// KonnectivityPort is the konnectivity server's port on the TCP's Service.
func KonnectivityPort(tcp *kamajiv1alpha1.TenantControlPlane) int32 {
	if k := tcp.Spec.Addons.Konnectivity; k != nil && k.KonnectivityServerSpec.Port != 0 {
		return k.KonnectivityServerSpec.Port
	}
	return DefaultKonnectivityPort
}

// ServedTLSRouteVersion is the TLSRoute version to write, as the admin cluster serves it: v1
// when served, else v1alpha2. Each version is asked for explicitly, so a mapper that cached the
// group before its CRD was upgraded looks again. When neither is served the error satisfies
// meta.IsNoMatchError.
func ServedTLSRouteVersion(mapper meta.RESTMapper) (schema.GroupVersionKind, error) {
	for _, v := range TLSRouteVersions {
		m, err := mapper.RESTMapping(TLSRouteGK, v)
		if err == nil {
			return m.GroupVersionKind, nil
		}
		if !meta.IsNoMatchError(err) {
			return schema.GroupVersionKind{}, err
		}
	}
	return schema.GroupVersionKind{}, &meta.NoKindMatchError{GroupKind: TLSRouteGK, SearchedVersions: TLSRouteVersions}
}

// TLSRoute routes the tenant host, by SNI, to the apiserver port of the TCP's Service. The
// parentRefs are the spec's; with konnectivity enabled, those naming no listener get
// sectionName kube-apiserver, as the konnectivity route shares the host name.
func TLSRoute(tcp *kamajiv1alpha1.TenantControlPlane) *gatewayv1.TLSRoute {
	section := ""
	if tcp.Spec.Addons.Konnectivity != nil {
		section = APIServerListener
	}
	return tlsRoute(tcp, tcp.Name, parentRefs(tcp, section, false), Port(tcp))
}

// KonnectivityTLSRoute is Kamaji's second route, for the konnectivity agents, or nil when
// konnectivity is not enabled: <tcp>-konnectivity, same Gateways and host name, sectionName
// konnectivity-server (the spec's sectionName and port are the apiserver listener's, so they
// are not carried over), to the konnectivity server's port of the Service.
func KonnectivityTLSRoute(tcp *kamajiv1alpha1.TenantControlPlane) *gatewayv1.TLSRoute {
	if tcp.Spec.Addons.Konnectivity == nil {
		return nil
	}
	return tlsRoute(tcp, KonnectivityTLSRouteName(tcp), parentRefs(tcp, KonnectivityListener, true), KonnectivityPort(tcp))
}

func tlsRoute(tcp *kamajiv1alpha1.TenantControlPlane, name string, parents []gatewayv1.ParentReference, port int32) *gatewayv1.TLSRoute {
	spec := tcp.Spec.ControlPlane.Gateway
	if spec == nil {
		spec = &kamajiv1alpha1.GatewaySpec{}
	}
	r := &gatewayv1.TLSRoute{
		TypeMeta: metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: TLSRouteGK.Kind},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: tcp.Namespace,
			Labels: withExtra(Labels(tcp), spec.AdditionalMetadata.Labels),
		},
		Spec: gatewayv1.TLSRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: parents},
			Hostnames:       []gatewayv1.Hostname{gatewayv1.Hostname(Hostname(tcp))},
			Rules: []gatewayv1.TLSRouteRule{{BackendRefs: []gatewayv1.BackendRef{{
				BackendObjectReference: gatewayv1.BackendObjectReference{
					Name: gatewayv1.ObjectName(ServiceName(tcp)),
					Port: ptr.To(port),
				},
			}}}},
		},
	}
	if len(spec.AdditionalMetadata.Annotations) > 0 {
		r.Annotations = spec.AdditionalMetadata.Annotations
	}
	return r
}

// parentRefs converts the spec's parentRefs. section, when set, names the listener of refs that
// name none; override replaces the spec's sectionName and drops its port.
func parentRefs(tcp *kamajiv1alpha1.TenantControlPlane, section string, override bool) []gatewayv1.ParentReference {
	if tcp.Spec.ControlPlane.Gateway == nil {
		return nil
	}
	out := make([]gatewayv1.ParentReference, 0, len(tcp.Spec.ControlPlane.Gateway.GatewayParentRefs))
	for _, p := range tcp.Spec.ControlPlane.Gateway.GatewayParentRefs {
		ref := gatewayv1.ParentReference{
			Group:       (*gatewayv1.Group)(p.Group),
			Kind:        (*gatewayv1.Kind)(p.Kind),
			Namespace:   (*gatewayv1.Namespace)(p.Namespace),
			Name:        gatewayv1.ObjectName(p.Name),
			SectionName: (*gatewayv1.SectionName)(p.SectionName),
			Port:        p.Port,
		}
		if override {
			ref.SectionName, ref.Port = nil, nil
		}
		if section != "" && ref.SectionName == nil {
			ref.SectionName = ptr.To(gatewayv1.SectionName(section))
		}
		out = append(out, ref)
	}
	return out
}

// TLSRouteAt renders a route at the version the admin cluster serves (see
// ServedTLSRouteVersion): the typed object of that version, converted to unstructured so that
// the core's scheme need not know the Gateway API.
func TLSRouteAt(r *gatewayv1.TLSRoute, gvk schema.GroupVersionKind) (*unstructured.Unstructured, error) {
	var obj runtime.Object
	switch gvk.Version {
	case gatewayv1.GroupVersion.Version:
		obj = r
	case gatewayv1alpha2.GroupVersion.Version:
		rules := make([]gatewayv1alpha2.TLSRouteRule, len(r.Spec.Rules))
		for i, rule := range r.Spec.Rules {
			rules[i] = gatewayv1alpha2.TLSRouteRule(rule)
		}
		obj = &gatewayv1alpha2.TLSRoute{
			ObjectMeta: r.ObjectMeta,
			Spec: gatewayv1alpha2.TLSRouteSpec{
				CommonRouteSpec: r.Spec.CommonRouteSpec,
				Hostnames:       r.Spec.Hostnames,
				Rules:           rules,
			},
		}
	default:
		return nil, fmt.Errorf("TLSRoute %s is not a version the core writes (%v)", gvk.Version, TLSRouteVersions)
	}
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: raw}
	u.SetGroupVersionKind(gvk)
	unstructured.RemoveNestedField(u.Object, "status")
	return u, nil
}
