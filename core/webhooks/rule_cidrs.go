package webhooks

import (
	"context"
	"net/netip"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ruleCIDRs: the service and pod ranges are canonical CIDRs, at most one per IP family
// (dual-stack), and the service range does not overlap the pod range.
func ruleCIDRs(_ context.Context, rc *tcpRuleContext) field.ErrorList {
	np := rc.New.Spec.NetworkProfile
	base := field.NewPath("spec", "networkProfile")
	var errs field.ErrorList
	svc, e := parseCIDRs(base.Child("serviceCidrs"), np.ServiceCIDRs)
	errs = append(errs, e...)
	pods, e := parseCIDRs(base.Child("podCidrs"), np.PodCIDRs)
	errs = append(errs, e...)
	for i, s := range svc {
		for _, p := range pods {
			if s.Overlaps(p) {
				errs = append(errs, field.Invalid(base.Child("serviceCidrs").Index(i), s.String(), "overlaps the pod range "+p.String()))
			}
		}
	}
	return errs
}

func parseCIDRs(path *field.Path, cidrs []string) ([]netip.Prefix, field.ErrorList) {
	var errs field.ErrorList
	var out []netip.Prefix
	families := map[bool]bool{}
	for i, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			errs = append(errs, field.Invalid(path.Index(i), c, "must be a CIDR, such as 10.96.0.0/16"))
			continue
		}
		if p.Masked() != p {
			errs = append(errs, field.Invalid(path.Index(i), c, "host bits are set; did you mean "+p.Masked().String()+"?"))
			continue
		}
		if families[p.Addr().Is4()] {
			errs = append(errs, field.Invalid(path.Index(i), c, "at most one CIDR per IP family"))
			continue
		}
		families[p.Addr().Is4()] = true
		out = append(out, p)
	}
	return out, errs
}
