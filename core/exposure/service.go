package exposure

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// APIServerPortName names the apiserver port on the Service and the container.
const APIServerPortName = "kube-apiserver"

// ServiceName is the Service of a TCP: it has the TCP's name, as in Kamaji.
func ServiceName(tcp *kamajiv1alpha1.TenantControlPlane) string { return tcp.Name }

// Port is the apiserver port (networkProfile.port, 6443 by default).
func Port(tcp *kamajiv1alpha1.TenantControlPlane) int32 {
	if p := tcp.Spec.NetworkProfile.Port; p != 0 {
		return p
	}
	return 6443
}

// Service builds the TCP's Service. extraPorts come from addons (konnectivity's server port).
func Service(tcp *kamajiv1alpha1.TenantControlPlane, extraPorts []corev1.ServicePort) *corev1.Service {
	spec := tcp.Spec.ControlPlane.Service
	np := tcp.Spec.NetworkProfile
	port := Port(tcp)
	svc := &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        ServiceName(tcp),
			Namespace:   tcp.Namespace,
			Labels:      withExtra(Labels(tcp), spec.AdditionalMetadata.Labels),
			Annotations: spec.AdditionalMetadata.Annotations,
		},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceType(spec.ServiceType),
			Selector: Labels(tcp),
			Ports: []corev1.ServicePort{{
				Name: APIServerPortName, Protocol: corev1.ProtocolTCP, Port: port, TargetPort: intstr.FromInt32(port),
			}},
		},
	}
	switch spec.ServiceType {
	case kamajiv1alpha1.ServiceTypeNodePort:
		// Kamaji semantics: with NodePort the apiserver port is also the node port.
		svc.Spec.Ports[0].NodePort = port
	case kamajiv1alpha1.ServiceTypeLoadBalancer:
		svc.Spec.LoadBalancerClass = np.LoadBalancerClass
		svc.Spec.LoadBalancerSourceRanges = np.LoadBalancerSourceRanges
		svc.Spec.AllocateLoadBalancerNodePorts = spec.AllocateLoadBalancerNodePorts
	}
	if np.AllowAddressAsExternalIP && np.Address != "" && spec.ServiceType != kamajiv1alpha1.ServiceTypeLoadBalancer {
		svc.Spec.ExternalIPs = []string{np.Address}
	}
	for _, p := range spec.AdditionalPorts {
		target := p.TargetPort
		if target == 0 {
			target = p.Port
		}
		protocol := p.Protocol
		if protocol == "" {
			protocol = corev1.ProtocolTCP
		}
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{
			Name: p.Name, Port: p.Port, Protocol: protocol, TargetPort: intstr.FromInt32(target), AppProtocol: p.AppProtocol,
		})
	}
	svc.Spec.Ports = append(svc.Spec.Ports, extraPorts...)
	return svc
}
