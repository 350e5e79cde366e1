package webhooks

import (
	"context"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// rulePreferredAddressTypes: --kubelet-preferred-address-types is an ordered preference; a
// repeated type is a mistake the apiserver would silently accept.
func rulePreferredAddressTypes(_ context.Context, rc *tcpRuleContext) field.ErrorList {
	path := field.NewPath("spec", "kubernetes", "kubelet", "preferredAddressTypes")
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, t := range rc.New.Spec.Kubernetes.Kubelet.PreferredAddressTypes {
		if seen[string(t)] {
			errs = append(errs, field.Duplicate(path.Index(i), t))
		}
		seen[string(t)] = true
	}
	return errs
}
