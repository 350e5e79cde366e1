package webhooks

import (
	"context"
	"net/netip"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ruleDNSServiceIPs: the cluster DNS addresses are Service IPs, so each must sit inside one of
// the service ranges; a kubelet pointed elsewhere would never resolve cluster names.
func ruleDNSServiceIPs(_ context.Context, rc *tcpRuleContext) field.ErrorList {
	np := rc.New.Spec.NetworkProfile
	path := field.NewPath("spec", "networkProfile", "dnsServiceIPs")
	var prefixes []netip.Prefix
	for _, c := range np.ServiceCIDRs {
		if p, err := netip.ParsePrefix(c); err == nil {
			prefixes = append(prefixes, p)
		}
	}
	var errs field.ErrorList
	for i, ip := range np.DNSServiceIPs {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			errs = append(errs, field.Invalid(path.Index(i), ip, "must be an IP address"))
			continue
		}
		inside := false
		for _, p := range prefixes {
			inside = inside || p.Contains(addr)
		}
		if !inside {
			errs = append(errs, field.Invalid(path.Index(i), ip, "must be inside a service CIDR (spec.networkProfile.serviceCidrs)"))
		}
	}
	return errs
}
