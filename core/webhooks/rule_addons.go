package webhooks

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// ruleAddons: an addon the TCP asks for is served by a configured plugin; otherwise the TCP
// could never be configured (the same as for a datastore driver). Checked when the addon is
// asked for, so a plugin removed from the configuration later does not lock existing TCPs.
func ruleAddons(_ context.Context, rc *tcpRuleContext) field.ErrorList {
	if rc.Opts.Addons == nil {
		return nil
	}
	var errs field.ErrorList
	path := field.NewPath("spec", "addons")
	for _, a := range []struct {
		field, addon string
		on           func(*kamajiv1alpha1.TenantControlPlane) bool
	}{
		{"coreDNS", "coredns", func(t *kamajiv1alpha1.TenantControlPlane) bool { return t.Spec.Addons.CoreDNS != nil }},
		{"kubeProxy", "kube-proxy", func(t *kamajiv1alpha1.TenantControlPlane) bool { return t.Spec.Addons.KubeProxy != nil }},
		{"konnectivity", "konnectivity", func(t *kamajiv1alpha1.TenantControlPlane) bool { return t.Spec.Addons.Konnectivity != nil }},
	} {
		if !a.on(rc.New) || (rc.Old != nil && a.on(rc.Old)) || rc.Opts.Addons.Served(a.addon) {
			continue
		}
		served := strings.Join(rc.Opts.Addons.Names(), ", ")
		if served == "" {
			served = "none"
		}
		errs = append(errs, field.Forbidden(path.Child(a.field), fmt.Sprintf(
			"no configured plugin serves the addon %q (served: %s): add an addon plugin for it to kamaji.yaml, or remove the field", a.addon, served)))
	}
	return errs
}
