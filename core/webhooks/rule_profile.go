package webhooks

import (
	"context"

	"k8s.io/apimachinery/pkg/util/validation/field"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/controlplane"
)

// ruleProfile: the control-plane-profile annotation must name a profile.
func ruleProfile(_ context.Context, rc *tcpRuleContext) field.ErrorList {
	key := kamajiv1alpha1.ControlPlaneProfileAnnotation
	// ParseProfile, not Profile: the field path already names the annotation.
	if _, err := controlplane.ParseProfile(rc.New.Annotations[key]); err != nil {
		return field.ErrorList{field.Invalid(field.NewPath("metadata", "annotations").Key(key), rc.New.Annotations[key], err.Error())}
	}
	return nil
}
