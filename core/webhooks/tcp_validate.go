package webhooks

import (
	"context"
	"encoding/json"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// tcpRuleContext is what a TenantControlPlane rule may look at. Old is nil on create.
type tcpRuleContext struct {
	Old, New *kamajiv1alpha1.TenantControlPlane
	Reader   client.Reader
	// Cached reads the manager's cache, with the SliceIndex of TCPs (nil: Reader lists them all).
	Cached client.Reader
	Mapper meta.RESTMapper
	Opts   Options
	// Warnings are returned to the client with an allowed request (kubectl prints them).
	Warnings []string
}

type tcpRule func(ctx context.Context, rc *tcpRuleContext) field.ErrorList

// tcpRules run in order; every error is reported, not only the first.
var tcpRules = []tcpRule{
	ruleName,
	ruleVersion,
	ruleCertSANs,
	ruleCIDRs,
	ruleDNSServiceIPs,
	ruleDataStore,
	ruleDataStoreOverrides,
	ruleSlice,
	ruleAddons,
	ruleImages,
	rulePreferredAddressTypes,
	ruleGateway,
	ruleSleepAfter,
	ruleProfile,
}

// annotationRules check the annotations of ours that change how a TCP runs; their value is
// never part of the spec, so a change of them does not bump the generation. A list, not a
// map, so that a rejection names them in the same order every time.
var annotationRules = []struct {
	key  string
	rule tcpRule
}{
	{kamajiv1alpha1.SleepAfterAnnotation, ruleSleepAfter},
	{kamajiv1alpha1.ControlPlaneProfileAnnotation, ruleProfile},
}

// changedAnnotationRules runs the rule of each annotation the update adds or changes.
func changedAnnotationRules(ctx context.Context, rc *tcpRuleContext) field.ErrorList {
	var errs field.ErrorList
	for _, a := range annotationRules {
		old, hadIt := rc.Old.Annotations[a.key]
		cur, hasIt := rc.New.Annotations[a.key]
		if hasIt && (!hadIt || old != cur) {
			errs = append(errs, a.rule(ctx, rc)...)
		}
	}
	return errs
}

type tcpValidator struct {
	opts   Options
	reader client.Reader
	cached client.Reader
	mapper meta.RESTMapper
}

func (v *tcpValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	rc := &tcpRuleContext{New: &kamajiv1alpha1.TenantControlPlane{}, Reader: newRequestReader(v.reader, v.cached), Cached: v.cached, Mapper: v.mapper, Opts: v.opts}
	if err := json.Unmarshal(req.Object.Raw, rc.New); err != nil {
		return admission.Errored(400, err)
	}
	if req.Operation == admissionv1.Update {
		rc.Old = &kamajiv1alpha1.TenantControlPlane{}
		if err := json.Unmarshal(req.OldObject.Raw, rc.Old); err != nil {
			return admission.Errored(400, err)
		}
		// Status and metadata-only updates (finalizers, annotations) must never be blocked by
		// a rule whose inputs (a DataStore, the Gateway API) changed since creation. Only an
		// annotation of ours that the update changes is checked, so that `kubectl annotate`
		// with a bad value is refused; one left as it was never blocks the update.
		if rc.Old.Generation == rc.New.Generation && rc.New.Generation != 0 {
			if errs := changedAnnotationRules(ctx, rc); len(errs) > 0 {
				return invalid(tcpGK, rc.New.Name, errs)
			}
			return admission.Allowed("")
		}
	}
	var errs field.ErrorList
	for _, rule := range tcpRules {
		errs = append(errs, rule(ctx, rc)...)
	}
	if len(errs) > 0 {
		return invalid(tcpGK, rc.New.Name, errs)
	}
	return admission.Allowed("").WithWarnings(rc.Warnings...)
}
