package exposure

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func TestIngressAndTLSRoute(t *testing.T) {
	tcp := newTCP(kamajiv1alpha1.ServiceTypeClusterIP)
	tcp.Spec.ControlPlane.Ingress = &kamajiv1alpha1.IngressSpec{IngressClassName: "nginx"}
	ing := Ingress(tcp)
	rule := ing.Spec.Rules[0]
	if rule.Host != "t.ns" || *ing.Spec.IngressClassName != "nginx" || rule.HTTP.Paths[0].Backend.Service.Name != "t" || rule.HTTP.Paths[0].Backend.Service.Port.Number != 6443 {
		t.Errorf("ingress: %+v", ing.Spec)
	}

	tcp.Spec.ControlPlane.Ingress = nil
	ns := "gateways"
	tcp.Spec.ControlPlane.Gateway = &kamajiv1alpha1.GatewaySpec{Hostname: "t.example.com", GatewayParentRefs: []kamajiv1alpha1.GatewayParentReference{{Name: "gw", Namespace: &ns}}}
	r := TLSRoute(tcp)
	host, _, _ := unstructured.NestedStringSlice(r.Object, "spec", "hostnames")
	parents, _, _ := unstructured.NestedSlice(r.Object, "spec", "parentRefs")
	if len(host) != 1 || host[0] != "t.example.com" || len(parents) != 1 || parents[0].(map[string]any)["namespace"] != "gateways" {
		t.Errorf("tlsroute: %v", r.Object)
	}
}
