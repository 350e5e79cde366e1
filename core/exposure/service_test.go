package exposure

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func newTCP(svcType kamajiv1alpha1.ServiceType) *kamajiv1alpha1.TenantControlPlane {
	tcp := &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Name: "t", Namespace: "ns"}}
	tcp.Spec.ControlPlane.Service.ServiceType = svcType
	tcp.Spec.NetworkProfile.Port = 6443
	return tcp
}

func TestServiceTypes(t *testing.T) {
	np := newTCP(kamajiv1alpha1.ServiceTypeNodePort)
	np.Spec.NetworkProfile.Port = 31443
	svc := Service(np, nil)
	if svc.Spec.Type != "NodePort" || svc.Spec.Ports[0].NodePort != 31443 || svc.Spec.Ports[0].Port != 31443 {
		t.Errorf("NodePort: port must double as node port: %+v", svc.Spec.Ports[0])
	}

	lb := newTCP(kamajiv1alpha1.ServiceTypeLoadBalancer)
	lb.Spec.NetworkProfile.LoadBalancerClass = ptr.To("example.com/vip")
	lb.Spec.NetworkProfile.LoadBalancerSourceRanges = []string{"10.0.0.0/8"}
	lb.Spec.ControlPlane.Service.AllocateLoadBalancerNodePorts = ptr.To(false)
	lb.Spec.ControlPlane.Service.AdditionalPorts = []kamajiv1alpha1.AdditionalPort{{Name: "metrics", Port: 9100}}
	lb.Spec.ControlPlane.Service.AdditionalMetadata.Labels = map[string]string{"team": "a", kamajiv1alpha1.NameLabel: "hijack"}
	svc = Service(lb, nil)
	if *svc.Spec.LoadBalancerClass != "example.com/vip" || svc.Spec.LoadBalancerSourceRanges[0] != "10.0.0.0/8" || *svc.Spec.AllocateLoadBalancerNodePorts {
		t.Errorf("LoadBalancer fields missing: %+v", svc.Spec)
	}
	if len(svc.Spec.Ports) != 2 || svc.Spec.Ports[1].Name != "metrics" || svc.Spec.Ports[1].TargetPort.IntVal != 9100 || svc.Spec.Ports[1].Protocol != "TCP" {
		t.Errorf("additional port: %+v", svc.Spec.Ports)
	}
	if svc.Labels["team"] != "a" || svc.Labels[kamajiv1alpha1.NameLabel] != "t" {
		t.Errorf("labels: user labels kept, ours win: %v", svc.Labels)
	}

	ext := newTCP(kamajiv1alpha1.ServiceTypeClusterIP)
	ext.Spec.NetworkProfile.Address = "192.168.1.5"
	ext.Spec.NetworkProfile.AllowAddressAsExternalIP = true
	if svc := Service(ext, nil); len(svc.Spec.ExternalIPs) != 1 || svc.Spec.ExternalIPs[0] != "192.168.1.5" {
		t.Errorf("allowAddressAsExternalIP: %v", svc.Spec.ExternalIPs)
	}
}
