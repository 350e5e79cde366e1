package tenantcontrolplane

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func accepted(status metav1.ConditionStatus) []metav1.Condition {
	return []metav1.Condition{{Type: "Accepted", Status: status, Reason: "Accepted", LastTransitionTime: metav1.Now()}}
}

func TestGatewayStatus(t *testing.T) {
	ipv4, host := gatewayv1.IPAddressType, gatewayv1.HostnameAddressType
	route := &gatewayv1.TLSRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "t1", Namespace: "tenants"},
		Spec:       gatewayv1.TLSRouteSpec{Hostnames: []gatewayv1.Hostname{"t1.example.com"}},
		Status: gatewayv1.TLSRouteStatus{RouteStatus: gatewayv1.RouteStatus{Parents: []gatewayv1.RouteParentStatus{
			{ParentRef: gatewayv1.ParentReference{Name: "gw", SectionName: ptr.To[gatewayv1.SectionName]("kube-apiserver")}, ControllerName: "example.com/gw", Conditions: accepted(metav1.ConditionTrue)},
			{ParentRef: gatewayv1.ParentReference{Name: "refused", Namespace: ptr.To[gatewayv1.Namespace]("infra")}, ControllerName: "example.com/gw", Conditions: accepted(metav1.ConditionFalse)},
		}}},
	}
	gws := map[types.NamespacedName]*gatewayv1.Gateway{
		{Namespace: "tenants", Name: "gw"}: {
			Spec: gatewayv1.GatewaySpec{Listeners: []gatewayv1.Listener{
				{Name: "kube-apiserver", Port: 6443, Protocol: gatewayv1.TLSProtocolType},
				{Name: "konnectivity-server", Port: 8132, Protocol: gatewayv1.TLSProtocolType},
			}},
			Status: gatewayv1.GatewayStatus{Addresses: []gatewayv1.GatewayStatusAddress{{Type: &ipv4, Value: "203.0.113.10"}, {Type: &host, Value: "lb.example.com"}}},
		},
		{Namespace: "infra", Name: "refused"}: {
			Spec:   gatewayv1.GatewaySpec{Listeners: []gatewayv1.Listener{{Name: "any", Port: 443}}},
			Status: gatewayv1.GatewayStatus{Addresses: []gatewayv1.GatewayStatusAddress{{Value: "198.51.100.1"}}},
		},
	}
	// As the apiserver returns it after the apply: an unstructured object.
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(route)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := asTLSRoute(&unstructured.Unstructured{Object: raw})
	if err != nil {
		t.Fatal(err)
	}
	st, err := gatewayStatusOf(tr, gws)
	if err != nil {
		t.Fatal(err)
	}
	if st.RouteRef.Name != "t1" || st.Name != "t1" || st.Namespace != "tenants" {
		t.Errorf("route = %+v", st)
	}
	if len(st.Parents) != 2 || st.Parents[0].ParentRef.Name != "gw" || *st.Parents[0].ParentRef.SectionName != "kube-apiserver" ||
		st.Parents[0].ControllerName != "example.com/gw" || st.Parents[0].Conditions[0].Type != "Accepted" || *st.Parents[1].ParentRef.Namespace != "infra" {
		t.Errorf("parents = %+v", st.Parents)
	}
	// Only the accepting Gateway, only the listener of the parentRef's sectionName.
	if len(st.AccessPoints) != 2 {
		t.Fatalf("access points = %+v", st.AccessPoints)
	}
	a, b := st.AccessPoints[0], st.AccessPoints[1]
	if a.Type != "IPAddress" || a.Value != "203.0.113.10" || a.Port != 6443 || !slices.Equal(a.URLs, []string{"https://t1.example.com:6443"}) {
		t.Errorf("access point %+v", a)
	}
	if b.Type != "Hostname" || b.Value != "lb.example.com" || b.Port != 6443 {
		t.Errorf("access point %+v", b)
	}

	// Without a host name, the URL is the address itself (IPv6 bracketed).
	tr.Spec.Hostnames = nil
	tr.Status.Parents = tr.Status.Parents[:1]
	tr.Status.Parents[0].ParentRef.SectionName = nil
	tr.Status.Parents[0].ParentRef.Port = ptr.To[gatewayv1.PortNumber](8132)
	gws[types.NamespacedName{Namespace: "tenants", Name: "gw"}].Status.Addresses = []gatewayv1.GatewayStatusAddress{{Value: "2001:db8::1"}}
	st, err = gatewayStatusOf(tr, gws)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.AccessPoints) != 1 || st.AccessPoints[0].Port != 8132 || !slices.Equal(st.AccessPoints[0].URLs, []string{"https://[2001:db8::1]:8132"}) {
		t.Errorf("access points = %+v", st.AccessPoints)
	}
}
