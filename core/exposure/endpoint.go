package exposure

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// ErrEndpointPending means the load balancer has not been given an address yet: a state to wait
// out, not a failure.
var ErrEndpointPending = errors.New("waiting for the load balancer to be given an address")

// ErrLoadBalancerHostname means the load balancer only has a host name. Certificates and
// kubeconfigs need an IP (resolving a name once would pin a value that may change), so the user
// must set spec.networkProfile.address.
var ErrLoadBalancerHostname = errors.New("the load balancer has a host name but no IP; set spec.networkProfile.address to the IP clients should use")

// EndpointAddress picks the tenant's public address: networkProfile.address, then
// advertiseAddress, then the load balancer's IP, then the Service's cluster IP.
func EndpointAddress(tcp *kamajiv1alpha1.TenantControlPlane, svc *corev1.Service) (string, error) {
	np := tcp.Spec.NetworkProfile
	if np.Address != "" {
		return np.Address, nil
	}
	if np.AdvertiseAddress != "" {
		return np.AdvertiseAddress, nil
	}
	if tcp.Spec.ControlPlane.Service.ServiceType == kamajiv1alpha1.ServiceTypeLoadBalancer {
		if svc == nil {
			return "", ErrEndpointPending
		}
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if ing.IP != "" {
				return ing.IP, nil
			}
		}
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if ing.Hostname != "" {
				return "", fmt.Errorf("%w (host name %s)", ErrLoadBalancerHostname, ing.Hostname)
			}
		}
		return "", ErrEndpointPending
	}
	if svc == nil || svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return "", ErrEndpointPending
	}
	return svc.Spec.ClusterIP, nil
}

// Endpoint is address:port, as status.controlPlaneEndpoint shows it.
func Endpoint(tcp *kamajiv1alpha1.TenantControlPlane, svc *corev1.Service) (string, error) {
	addr, err := EndpointAddress(tcp, svc)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(addr, strconv.Itoa(int(Port(tcp)))), nil
}
