package exposure

import (
	"testing"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func TestIngress(t *testing.T) {
	tcp := newTCP(kamajiv1alpha1.ServiceTypeClusterIP)
	tcp.Spec.ControlPlane.Ingress = &kamajiv1alpha1.IngressSpec{IngressClassName: "nginx"}
	ing := Ingress(tcp)
	rule := ing.Spec.Rules[0]
	if rule.Host != "t.ns" || *ing.Spec.IngressClassName != "nginx" || rule.HTTP.Paths[0].Backend.Service.Name != "t" || rule.HTTP.Paths[0].Backend.Service.Port.Number != 6443 {
		t.Errorf("ingress: %+v", ing.Spec)
	}
}
