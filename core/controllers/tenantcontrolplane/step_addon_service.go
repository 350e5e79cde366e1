package tenantcontrolplane

import (
	"context"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/exposure"
	"github.com/openhcp/kamaji/core/tenant/addons"
)

// stepAddonService adds the addons' ports (konnectivity's agent port) to the TCP's Service.
// Each addon declares its own ports with its own field manager, beside the Service the core
// declares: the Service step does not know them (it runs before the render, which needs the
// endpoint the Service gives), and ports of one manager are never removed by another's apply.
// An addon that has ports no more (removed from the spec) applies an empty declaration, which
// removes its ports.
func stepAddonService(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionAddonsReady
	managers := map[string]bool{}
	for name := range p.addonPorts {
		managers[addons.FieldManager(name)] = true
	}
	stale := map[string]bool{}
	for _, mf := range p.service.ManagedFields {
		if strings.HasPrefix(mf.Manager, addons.FieldManager("")) && !managers[mf.Manager] && mf.FieldsV1 != nil && strings.Contains(string(mf.FieldsV1.Raw), `"f:ports"`) {
			stale[mf.Manager] = true
		}
	}
	names := make([]string, 0, len(p.addonPorts))
	for n := range p.addonPorts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if hasPorts(p.service, addons.FieldManager(name), p.addonPorts[name]) {
			continue // already declared: no write
		}
		if err := applyServicePorts(ctx, r, p, addons.FieldManager(name), p.addonPorts[name]); err != nil {
			return fail(cond, ReasonAddonApplyFailed, err)
		}
	}
	for m := range stale {
		if err := applyServicePorts(ctx, r, p, m, nil); err != nil {
			return fail(cond, ReasonAddonApplyFailed, err)
		}
	}
	konnectivityService(p)
	return nil
}

// applyServicePorts declares ports, and nothing else, on the TCP's Service as manager.
func applyServicePorts(ctx context.Context, r *Reconciler, p *pass, manager string, ports []corev1.ServicePort) error {
	full := exposure.Service(p.tcp, ports)
	svc := &corev1.Service{TypeMeta: full.TypeMeta}
	svc.Name, svc.Namespace = full.Name, full.Namespace
	svc.Spec.Ports = full.Spec.Ports[len(full.Spec.Ports)-len(ports):]
	if err := apply.ApplyAs(ctx, r.Client, svc, manager); err != nil {
		return err
	}
	p.service = svc
	return nil
}

// hasPorts tells whether svc has every port as wanted and manager has declared ports there.
func hasPorts(svc *corev1.Service, manager string, ports []corev1.ServicePort) bool {
	declared := false
	for _, mf := range svc.ManagedFields {
		declared = declared || (mf.Manager == manager && mf.FieldsV1 != nil && strings.Contains(string(mf.FieldsV1.Raw), `"f:ports"`))
	}
	if !declared {
		return false
	}
	for _, want := range ports {
		found := false
		for _, got := range svc.Spec.Ports {
			found = found || (got.Name == want.Name && got.Port == want.Port && got.Protocol == want.Protocol && got.TargetPort == want.TargetPort)
		}
		if !found {
			return false
		}
	}
	return true
}
