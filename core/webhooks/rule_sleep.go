package webhooks

import (
	"context"

	"k8s.io/apimachinery/pkg/util/validation/field"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/sleep"
)

// ruleSleepAfter: the sleep-after annotation must be a duration of at least the minimum.
func ruleSleepAfter(_ context.Context, rc *tcpRuleContext) field.ErrorList {
	v, ok := rc.New.Annotations[kamajiv1alpha1.SleepAfterAnnotation]
	if !ok {
		return nil
	}
	if _, err := sleep.SleepAfter(rc.New); err != nil {
		return field.ErrorList{field.Invalid(field.NewPath("metadata", "annotations").Key(kamajiv1alpha1.SleepAfterAnnotation), v, err.Error())}
	}
	return nil
}
