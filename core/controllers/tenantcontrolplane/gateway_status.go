package tenantcontrolplane

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// Reading the Gateways a route attaches to gives status.kubernetesResources.gateway.accessPoints.
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gateways,verbs=get;list;watch

// gatewayStatus is the status of a TLSRoute the core applied (the object as the apiserver
// returned it, at whatever version): the route (routeRef), its status.parents as the Gateway
// controllers wrote them, and the access points of the Gateways that accepted it. A Gateway
// that cannot be read (not found, Gateway API without the Gateway kind) contributes no access
// point; only other read errors are returned.
func gatewayStatus(ctx context.Context, c client.Reader, route client.Object) (*kamajiv1alpha1.KubernetesGatewayStatus, error) {
	tr, err := asTLSRoute(route)
	if err != nil {
		return nil, err
	}
	gateways := map[types.NamespacedName]*gatewayv1.Gateway{}
	for _, ps := range tr.Status.Parents {
		key, ok := gatewayOf(ps.ParentRef, tr.Namespace)
		if !ok || gateways[key] != nil || !meta.IsStatusConditionTrue(ps.Conditions, string(gatewayv1.RouteConditionAccepted)) {
			continue
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gatewayv1.SchemeGroupVersion.WithKind("Gateway"))
		if err := c.Get(ctx, client.ObjectKey(key), u); err != nil {
			if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
				continue
			}
			return nil, fmt.Errorf("Gateway %s: %w", key, err)
		}
		gw := &gatewayv1.Gateway{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, gw); err != nil {
			return nil, fmt.Errorf("Gateway %s: %w", key, err)
		}
		gateways[key] = gw
	}
	return gatewayStatusOf(tr, gateways)
}

func asTLSRoute(route client.Object) (*gatewayv1.TLSRoute, error) {
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(route)
	if err != nil {
		return nil, err
	}
	tr := &gatewayv1.TLSRoute{}
	// v1alpha2's spec.hostnames and status.parents have v1's shape.
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, tr); err != nil {
		return nil, fmt.Errorf("TLSRoute %s: %w", route.GetName(), err)
	}
	return tr, nil
}

// gatewayOf is the Gateway a parentRef names, if it names one.
func gatewayOf(ref gatewayv1.ParentReference, routeNamespace string) (types.NamespacedName, bool) {
	if (ref.Group != nil && *ref.Group != gatewayv1.GroupName) || (ref.Kind != nil && *ref.Kind != "Gateway") {
		return types.NamespacedName{}, false
	}
	ns := routeNamespace
	if ref.Namespace != nil && *ref.Namespace != "" {
		ns = string(*ref.Namespace)
	}
	return types.NamespacedName{Namespace: ns, Name: string(ref.Name)}, true
}

// gatewayStatusOf builds the status from the route and the Gateways read (by parentRef): each
// address of each Gateway that accepted the route, on each listener the parentRef selects
// (by sectionName and port when it gives them), with the URLs of the route's host names there.
func gatewayStatusOf(tr *gatewayv1.TLSRoute, gateways map[types.NamespacedName]*gatewayv1.Gateway) (*kamajiv1alpha1.KubernetesGatewayStatus, error) {
	st := &kamajiv1alpha1.KubernetesGatewayStatus{
		RouteRef: corev1.LocalObjectReference{Name: tr.Name}, Name: tr.Name, Namespace: tr.Namespace,
	}
	if len(tr.Status.Parents) > 0 {
		b, err := json.Marshal(tr.Status.Parents)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &st.Parents); err != nil {
			return nil, err
		}
	}
	type point struct {
		typ, value string
		port       int32
	}
	seen := map[point]bool{}
	for _, ps := range tr.Status.Parents {
		key, ok := gatewayOf(ps.ParentRef, tr.Namespace)
		gw := gateways[key]
		if !ok || gw == nil || !meta.IsStatusConditionTrue(ps.Conditions, string(gatewayv1.RouteConditionAccepted)) {
			continue
		}
		for _, l := range gw.Spec.Listeners {
			if (ps.ParentRef.SectionName != nil && *ps.ParentRef.SectionName != l.Name) ||
				(ps.ParentRef.Port != nil && *ps.ParentRef.Port != l.Port) {
				continue
			}
			port := int32(l.Port)
			for _, a := range gw.Status.Addresses {
				typ := string(gatewayv1.IPAddressType)
				if a.Type != nil && *a.Type != "" {
					typ = string(*a.Type)
				}
				p := point{typ, a.Value, port}
				if seen[p] {
					continue
				}
				seen[p] = true
				ap := kamajiv1alpha1.GatewayAccessPoint{Type: typ, Value: a.Value, Port: port}
				for _, h := range tr.Spec.Hostnames {
					ap.URLs = append(ap.URLs, fmt.Sprintf("https://%s:%d", h, port))
				}
				if len(ap.URLs) == 0 {
					ap.URLs = []string{fmt.Sprintf("https://%s:%d", hostPort(a.Value, typ), port)}
				}
				st.AccessPoints = append(st.AccessPoints, ap)
			}
		}
	}
	slices.SortStableFunc(st.AccessPoints, func(a, b kamajiv1alpha1.GatewayAccessPoint) int {
		if a.Value != b.Value {
			if a.Value < b.Value {
				return -1
			}
			return 1
		}
		return int(a.Port - b.Port)
	})
	return st, nil
}

// hostPort brackets an IPv6 address for a URL.
func hostPort(value, typ string) string {
	if typ == string(gatewayv1.IPAddressType) && slices.Contains([]byte(value), ':') {
		return "[" + value + "]"
	}
	return value
}
