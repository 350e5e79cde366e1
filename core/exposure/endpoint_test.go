package exposure

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func TestEndpoint(t *testing.T) {
	svc := &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.7"}}
	tcp := newTCP(kamajiv1alpha1.ServiceTypeClusterIP)
	if got, _ := Endpoint(tcp, svc); got != "10.0.0.7:6443" {
		t.Errorf("cluster IP endpoint: %s", got)
	}
	tcp.Spec.NetworkProfile.AdvertiseAddress = "10.1.1.1"
	if got, _ := Endpoint(tcp, svc); got != "10.1.1.1:6443" {
		t.Errorf("advertiseAddress wins over the cluster IP: %s", got)
	}
	tcp.Spec.NetworkProfile.Address = "fd00::1"
	if got, _ := Endpoint(tcp, svc); got != "[fd00::1]:6443" {
		t.Errorf("address wins, IPv6 bracketed: %s", got)
	}

	lb := newTCP(kamajiv1alpha1.ServiceTypeLoadBalancer)
	if _, err := Endpoint(lb, &corev1.Service{}); !errors.Is(err, ErrEndpointPending) {
		t.Errorf("no ingress yet: want pending, got %v", err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{Hostname: "lb.example.com"}}
	if _, err := Endpoint(lb, svc); !errors.Is(err, ErrLoadBalancerHostname) {
		t.Errorf("hostname-only load balancer: want a clear error, got %v", err)
	}
	svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: "203.0.113.9"})
	if got, err := Endpoint(lb, svc); got != "203.0.113.9:6443" || err != nil {
		t.Errorf("load balancer IP: %s %v", got, err)
	}
}
