package tenantcontrolplane

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/tenant"
	"github.com/openhcp/kamaji/core/tenant/addons"
)

// conflictRetries bounds the re-reads when an addon object changes between our read of its
// customisation and our apply.
const conflictRetries = 3

// errCustomization is a malformed kamaji.clastix.io/addon-ignore annotation.
var errCustomization = errors.New("invalid customisation")

// stepAddons applies each enabled addon's render in the tenant, with the addon's own field
// manager and labels, honouring the users' customisations (kamaji.clastix.io/addon-ignore);
// prunes what a new render no longer has; and removes every object of an addon the spec no
// longer enables. The addons' objects are watched: a deleted or changed object wakes the TCP
// and is applied again (drift remediation). At steady state nothing is sent to the tenant.
func stepAddons(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionAddonsReady
	var applied, notes []string
	for _, name := range knownAddons {
		view := addonStatusOf(&p.status.Addons, name)
		res, enabled := p.renders[name]
		if !enabled {
			if *view.enabled || *view.checksum != "" {
				if err := removeAddon(ctx, p, name); err != nil {
					return fail(cond, ReasonAddonPruneFailed, fmt.Errorf("removing addon %s: %w", name, err))
				}
				*view.enabled, *view.checksum, *view.lastUpdate = false, "", metav1.NewTime(p.now)
				if name == AddonKonnectivity {
					forgetKonnectivityObjects(&p.status.Addons.Konnectivity)
				}
			}
			continue
		}
		objs, err := addons.Decode(name, res.Objects)
		if err != nil {
			return fail(cond, ReasonAddonRenderFailed, err)
		}
		sum, unmatched, err := applyAddon(ctx, p, name, objs)
		if errors.Is(err, errCustomization) {
			return fail(cond, ReasonAddonCustomization, err)
		}
		if err != nil {
			return fail(cond, ReasonAddonApplyFailed, fmt.Errorf("addon %s: %w", name, err))
		}
		notes = append(notes, unmatched...)
		changed := *view.checksum != sum || !*view.enabled
		if changed {
			*view.lastUpdate = metav1.NewTime(p.now)
		}
		*view.enabled, *view.checksum = true, sum
		if name == AddonKonnectivity {
			konnectivityObjects(&p.status.Addons.Konnectivity, objs, changed, p.now)
		}
		applied = append(applied, name)
	}
	if len(applied) == 0 {
		p.setCondition(cond, metav1.ConditionTrue, ReasonNoAddons, "no addon is enabled")
		return nil
	}
	msg := "applied " + strings.Join(applied, ", ")
	if len(notes) > 0 {
		msg += "; " + strings.Join(notes, "; ")
	}
	p.setCondition(cond, metav1.ConditionTrue, ReasonAddonsApplied, msg)
	return nil
}

// applyAddon declares an addon's objects unless nothing changed, then prunes. The checksum
// covers the objects as declared, that is after the customisations recorded in the watch
// cache; the apply itself reads each object's customisation afresh and applies with its
// resourceVersion as a precondition, so that a change made meanwhile is never overwritten.
func applyAddon(ctx context.Context, p *pass, name string, objs []*unstructured.Unstructured) (sum string, notes []string, err error) {
	tc := p.tenant
	kinds := append([]schema.GroupVersionKind(nil), addons.PruneKinds...)
	for _, o := range objs {
		if err := tc.Watch(ctx, o.GroupVersionKind()); err != nil {
			return "", nil, err
		}
		kinds = append(kinds, o.GroupVersionKind())
	}
	declared := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		d := o.DeepCopy()
		if live, ok := tc.Cached(o.GroupVersionKind(), o.GetNamespace(), o.GetName()); ok {
			all, unmatched, err := customise(d, live.Annotations[kamajiv1alpha1.AddonIgnoreAnnotation])
			if err != nil {
				return "", nil, fmt.Errorf("%w: addon %s, %s %s: %v", errCustomization, name, o.GetKind(), objectName(o), err)
			}
			if all {
				continue
			}
			for _, u := range unmatched {
				notes = append(notes, fmt.Sprintf("%s %s: %s matches no rendered field", o.GetKind(), objectName(o), u))
			}
		}
		declared = append(declared, d)
	}
	sum, err = addons.Checksum(declared)
	if err != nil {
		return "", nil, err
	}
	unit := tenant.AddonUnit(name)
	if tc.Unchanged(unit, sum) {
		return sum, notes, nil
	}
	events := tc.Events(unit)
	keep := map[string]bool{}
	for _, o := range objs {
		keep[addons.Key(o)] = true
		if err := applyAddonObject(ctx, tc, name, o); err != nil {
			return "", nil, err
		}
	}
	stale, err := addons.Stale(ctx, tc, name, kinds, keep)
	if err != nil {
		return "", nil, err
	}
	for _, s := range stale {
		if err := apply.Delete(ctx, tc, s); err != nil {
			return "", nil, fmt.Errorf("pruning %s %s: %w", s.Kind, objectName(s), err)
		}
	}
	tc.Record(unit, sum, events)
	return sum, notes, nil
}

// applyAddonObject applies one rendered object with the addon's field manager, minus the
// fields its users took over.
func applyAddonObject(ctx context.Context, tc *tenant.Client, name string, rendered *unstructured.Unstructured) error {
	manager := addons.FieldManager(name)
	for attempt := 0; ; attempt++ {
		live := &metav1.PartialObjectMetadata{}
		live.SetGroupVersionKind(rendered.GroupVersionKind())
		err := tc.Get(ctx, client.ObjectKeyFromObject(rendered), live)
		obj := rendered.DeepCopy()
		if apierrors.IsNotFound(err) {
			err = apply.ApplyAs(ctx, tc, obj, manager)
		} else if err == nil {
			all, _, cerr := customise(obj, live.Annotations[kamajiv1alpha1.AddonIgnoreAnnotation])
			if cerr != nil {
				return fmt.Errorf("%w: addon %s, %s %s: %v", errCustomization, name, rendered.GetKind(), objectName(rendered), cerr)
			}
			if all {
				return nil
			}
			err = apply.ApplyAsIfUnchanged(ctx, tc, obj, manager, live.ResourceVersion)
		}
		if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt < conflictRetries {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", rendered.GetKind(), objectName(rendered), err)
		}
		return nil
	}
}

// customise strips from obj the fields its users took over; all is true when they took the
// whole object.
func customise(obj *unstructured.Unstructured, annotation string) (all bool, unmatched []string, err error) {
	all, pointers, err := addons.Ignored(annotation)
	if err != nil || all {
		return all, nil, err
	}
	unmatched, err = addons.Strip(obj, pointers)
	return false, unmatched, err
}

// removeAddon deletes every object of an addon the spec no longer enables.
func removeAddon(ctx context.Context, p *pass, name string) error {
	tc := p.tenant
	stale, err := addons.Stale(ctx, tc, name, addons.PruneKinds, nil)
	if err != nil {
		return err
	}
	for _, s := range stale {
		if err := apply.Delete(ctx, tc, s); err != nil {
			return fmt.Errorf("%s %s: %w", s.Kind, objectName(s), err)
		}
	}
	tc.Forget(tenant.AddonUnit(name))
	return nil
}

func objectName(o client.Object) string {
	if ns := o.GetNamespace(); ns != "" {
		return ns + "/" + o.GetName()
	}
	return o.GetName()
}
