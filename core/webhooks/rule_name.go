package webhooks

import (
	"context"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ruleName: the TCP name becomes a Service name and a DNS label of the tenant endpoint, so it
// must be a DNS-1035 label (lowercase, starts with a letter, at most 63 characters).
func ruleName(_ context.Context, rc *tcpRuleContext) field.ErrorList {
	if rc.Old != nil {
		return nil
	}
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1035Label(rc.New.Name) {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), rc.New.Name, msg))
	}
	return errs
}
