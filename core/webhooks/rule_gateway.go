package webhooks

import (
	"context"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TLSRouteGK is the Gateway API kind that exposes a tenant through a Gateway.
var TLSRouteGK = schema.GroupKind{Group: "gateway.networking.k8s.io", Kind: "TLSRoute"}

// ruleGateway: asking for a Gateway needs the Gateway API (TLSRoute) served by the admin cluster.
func ruleGateway(_ context.Context, rc *tcpRuleContext) field.ErrorList {
	if rc.New.Spec.ControlPlane.Gateway == nil || rc.Mapper == nil {
		return nil
	}
	if rc.Old != nil && rc.Old.Spec.ControlPlane.Gateway != nil {
		return nil
	}
	if _, err := rc.Mapper.RESTMapping(TLSRouteGK); err != nil {
		if meta.IsNoMatchError(err) {
			return field.ErrorList{field.Forbidden(field.NewPath("spec", "controlPlane", "gateway"),
				"the admin cluster does not serve the Gateway API (gateway.networking.k8s.io TLSRoute); install its CRDs or use an Ingress")}
		}
		return field.ErrorList{field.InternalError(field.NewPath("spec", "controlPlane", "gateway"), err)}
	}
	return nil
}
