package tenantpki

import (
	"net"
	"strings"

	"github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/netprofile"
)

const (
	// AdminClusterDomain is the cluster domain of the admin cluster, where the tenant's Service
	// lives; its FQDN is used by in-cluster consumers (admin.svc kubeconfigs, konnectivity...).
	AdminClusterDomain = "cluster.local"
)

// APIServerSANs lists every name and address clients may dial kube-apiserver at:
//   - loopback (127.0.0.1, localhost): the controller-manager and scheduler in the same pod;
//   - kubernetes, kubernetes.default, kubernetes.default.svc[.<tenant cluster domain>] and the
//     first IP of each service CIDR: the tenant's own `kubernetes` Service, used by its pods;
//   - <svc>, <svc>.<ns>, <svc>.<ns>.svc[.cluster.local] and serviceIP: the tenant Service in
//     the admin cluster (serviceName and serviceIP may be empty while it does not exist);
//   - spec.networkProfile address, advertiseAddress and certSANs, the Ingress and Gateway
//     hostnames, the load balancer ingress addresses and the host of status.controlPlaneEndpoint:
//     how the tenant is exposed;
//   - extra: any further IP or name.
//
// Values that parse as IPs go to IPs, the others to DNSNames; both lists are deduplicated and
// sorted so the same tenant always yields the same SANs and no reissue is triggered by order.
func APIServerSANs(tcp *v1alpha1.TenantControlPlane, serviceName, serviceIP string, extra ...string) SANs {
	var values []string
	add := func(v ...string) { values = append(values, v...) }

	// netprofile applies the CRD's defaults: objects read before defaulting must not lose SANs.
	np := tcp.Spec.NetworkProfile
	domain := netprofile.ClusterDomain(np)
	add("127.0.0.1", "localhost",
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc."+domain)

	if serviceName != "" {
		ns := tcp.Namespace
		add(serviceName, serviceName+"."+ns, serviceName+"."+ns+".svc", serviceName+"."+ns+".svc."+AdminClusterDomain)
	}
	add(serviceIP, np.Address, np.AdvertiseAddress)
	add(serviceCIDRFirstIPs(np)...)
	add(np.CertSANs...)

	if in := tcp.Spec.ControlPlane.Ingress; in != nil {
		add(hostOf(in.Hostname))
	}
	if gw := tcp.Spec.ControlPlane.Gateway; gw != nil {
		add(hostOf(gw.Hostname))
	}
	for _, lb := range tcp.Status.Kubernetes.Service.LoadBalancer.Ingress {
		add(lb.IP, lb.Hostname)
	}
	add(hostOf(tcp.Status.ControlPlaneEndpoint))
	add(extra...)

	return splitSANs(values)
}

// splitSANs sorts values into IPs and DNS names, dropping empties and duplicates.
func splitSANs(values []string) SANs {
	var s SANs
	for _, v := range values {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if ip := net.ParseIP(v); ip != nil {
			s.IPs = append(s.IPs, ip)
		} else {
			s.DNSNames = append(s.DNSNames, v)
		}
	}
	s.DNSNames = normStrings(s.DNSNames)
	s.IPs = normIPs(s.IPs)
	return s
}

// serviceCIDRFirstIPs returns the first address of each service CIDR: the IP the tenant's
// `kubernetes` Service gets (10.96.0.1 for 10.96.0.0/16).
func serviceCIDRFirstIPs(np v1alpha1.NetworkProfileSpec) []string {
	var out []string
	for _, c := range netprofile.ServiceRanges(np) {
		// A range that does not parse is rejected by the CRD validation: nothing to certify.
		if ip, err := netprofile.NthAddress(strings.TrimSpace(c), 1); err == nil {
			out = append(out, ip.String())
		}
	}
	return out
}

// hostOf drops a port ("host:port" endpoints and hostnames); values without one are kept.
func hostOf(v string) string {
	if h, _, err := net.SplitHostPort(v); err == nil {
		return h
	}
	return v
}
