package webhooks

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/openhcp/kamaji/core/exposure"
)

// TLSRouteGK is the Gateway API kind that exposes a tenant through a Gateway.
var TLSRouteGK = exposure.TLSRouteGK

// ruleGateway: asking for a Gateway needs the admin cluster to serve TLSRoute at a version the
// core writes (v1, or v1alpha2 from older Gateway API CRDs).
func ruleGateway(_ context.Context, rc *tcpRuleContext) field.ErrorList {
	if rc.New.Spec.ControlPlane.Gateway == nil || rc.Mapper == nil {
		return nil
	}
	if rc.Old != nil && rc.Old.Spec.ControlPlane.Gateway != nil {
		return nil
	}
	if _, err := exposure.ServedTLSRouteVersion(rc.Mapper); err != nil {
		if meta.IsNoMatchError(err) {
			return field.ErrorList{field.Forbidden(field.NewPath("spec", "controlPlane", "gateway"),
				fmt.Sprintf("the admin cluster does not serve the Gateway API (gateway.networking.k8s.io TLSRoute %v); install its CRDs or use an Ingress", exposure.TLSRouteVersions))}
		}
		return field.ErrorList{field.InternalError(field.NewPath("spec", "controlPlane", "gateway"), err)}
	}
	return nil
}
