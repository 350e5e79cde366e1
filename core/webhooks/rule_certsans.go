package webhooks

import (
	"context"
	"net"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ruleCertSANs: each extra SAN of the apiserver certificate is an IP address or a DNS name,
// optionally a wildcard (*.example.com); anything else would make certificate issuing fail
// later, far from the user's edit.
func ruleCertSANs(_ context.Context, rc *tcpRuleContext) field.ErrorList {
	var errs field.ErrorList
	path := field.NewPath("spec", "networkProfile", "certSANs")
	seen := map[string]bool{}
	for i, san := range rc.New.Spec.NetworkProfile.CertSANs {
		p := path.Index(i)
		if seen[san] {
			errs = append(errs, field.Duplicate(p, san))
			continue
		}
		seen[san] = true
		if net.ParseIP(san) != nil {
			continue
		}
		name := strings.TrimPrefix(san, "*.")
		if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
			errs = append(errs, field.Invalid(p, san, "must be an IP address or a DNS name (a leading *. wildcard is allowed)"))
		}
	}
	return errs
}
