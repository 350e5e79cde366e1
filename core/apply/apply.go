// Package apply is the one way the core writes to the API: server-side apply with our field
// manager. Objects are declared whole on every reconcile, so a field we stop setting (a removed
// extra arg, a dropped label) is removed by the apiserver, and fields other managers own (an
// HPA's replicas, a user's annotation) are left alone.
package apply

import (
	"context"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// FieldManager owns every field the core declares.
const FieldManager = "kamaji"

// Apply declares obj as the whole intent of our field manager, forcing ownership of the fields
// it sets, and decodes the object the apiserver returns back into obj.
//
// The declaration is sent as an apply patch through obj's own client, not as an apply
// configuration: for a built-in kind the apiserver then answers in protobuf, decoded straight
// into obj, where an apply configuration is answered in JSON, decoded into a map and converted.
// Applies are most of the manager's requests: a Secret of 7.5 KB cost the manager 1.6-1.8 ms
// of CPU to apply that way, 1.0-1.3 ms this way (the apiserver's share, about 5-6 ms, is the
// same either way; docs/operations.md, Measured figures).
func Apply(ctx context.Context, c client.Client, obj client.Object) error {
	return ApplyAs(ctx, c, obj, FieldManager)
}

// ApplyAs is Apply with another field manager: addons apply with one manager each, so pruning
// one addon's fields never touches another's.
func ApplyAs(ctx context.Context, c client.Client, obj client.Object, manager string) error {
	return applyAs(ctx, c, obj, manager, "")
}

// ApplyAsIfUnchanged is ApplyAs with a precondition: the object must still be at
// resourceVersion, or the apiserver answers Conflict. The caller read something of the live
// object (such as a user's customisation annotation) that shapes what it declares, and must not
// overwrite a change made since.
func ApplyAsIfUnchanged(ctx context.Context, c client.Client, obj client.Object, manager, resourceVersion string) error {
	if resourceVersion == "" {
		return fmt.Errorf("apply: no resourceVersion for the precondition")
	}
	return applyAs(ctx, c, obj, manager, resourceVersion)
}

func applyAs(ctx context.Context, c client.Client, obj client.Object, manager, resourceVersion string) error {
	u, err := toApplyConfiguration(obj, c.Scheme())
	if err != nil {
		return err
	}
	delete(u.Object, "status") // written by its controller, never declared
	if resourceVersion != "" {
		u.SetResourceVersion(resourceVersion)
	}
	body, err := json.Marshal(u.Object)
	if err != nil {
		return fmt.Errorf("apply %s: %w", u.GetKind(), err)
	}
	return c.Patch(ctx, obj, client.RawPatch(types.ApplyPatchType, body), client.FieldOwner(manager), client.ForceOwnership, noStrictDecoding)
}

// noStrictDecoding is on every apply: it skips the apiserver's strict decoding of the body, a
// second parse of it whose only finds an apply does not already refuse are duplicate keys,
// which a body marshalled from Go cannot have (apply itself refuses a field the apiserver does
// not know: "field not declared in schema"). Skipping it took 9% off a Secret apply's CPU on
// the apiserver, 19% when nothing changed (measured alone, 2026-12-06).
const noStrictDecoding = client.FieldValidation(metav1.FieldValidationIgnore)

// ApplyStatus declares obj's status through the status subresource. The core is the single
// writer of our objects' status; the whole status is declared once per reconcile pass.
func ApplyStatus(ctx context.Context, c client.Client, obj client.Object) error {
	u, err := toApplyConfiguration(obj, c.Scheme())
	if err != nil {
		return err
	}
	// Only the status stanza is ours to declare here.
	for k := range u.Object {
		switch k {
		case "apiVersion", "kind", "metadata", "status":
		default:
			delete(u.Object, k)
		}
	}
	// An empty struct (a status section emptied, such as a disabled addon's) is not declared:
	// declared as {} after its fields were owned, apply would leave it null, which the schema
	// refuses. Undeclared, its fields are simply removed.
	if st, ok := u.Object["status"].(map[string]any); ok {
		pruneEmptyMaps(st)
	}
	body, err := json.Marshal(u.Object)
	if err != nil {
		return fmt.Errorf("apply %s status: %w", u.GetKind(), err)
	}
	return c.Status().Patch(ctx, obj, client.RawPatch(types.ApplyPatchType, body), client.FieldOwner(FieldManager), client.ForceOwnership, noStrictDecoding)
}

// ApplyStatusFields declares only the given status fields of obj (its name and kind are taken
// from obj, nothing else) under another field manager: a writer that owns a few status fields
// of an object whose status the core otherwise declares whole (the datastore usage on a TCP)
// must neither take nor drop the core's fields.
func ApplyStatusFields(ctx context.Context, c client.Client, obj client.Object, manager string, status map[string]any) error {
	gvk, err := apiutil.GVKForObject(obj, c.Scheme())
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"status": status}}
	u.SetGroupVersionKind(gvk)
	u.SetName(obj.GetName())
	u.SetNamespace(obj.GetNamespace())
	return c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(manager), client.ForceOwnership)
}

func toApplyConfiguration(obj client.Object, scheme *runtime.Scheme) (*unstructured.Unstructured, error) {
	gvk, err := apiutil.GVKForObject(obj, scheme)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", gvk.Kind, err)
	}
	pruneNulls(raw)
	u := &unstructured.Unstructured{Object: raw}
	u.SetGroupVersionKind(gvk)
	// Server-populated metadata must not be declared: it would be claimed, or rejected.
	for _, f := range []string{"creationTimestamp", "resourceVersion", "managedFields", "uid", "generation", "selfLink"} {
		unstructured.RemoveNestedField(u.Object, "metadata", f)
	}
	return u, nil
}

// pruneEmptyMaps drops the maps that are empty, or become empty once their empty maps are
// dropped. Only for status: in a spec an empty map can mean something (emptyDir: {}).
func pruneEmptyMaps(m map[string]any) {
	for k, child := range m {
		switch c := child.(type) {
		case map[string]any:
			pruneEmptyMaps(c)
			if len(c) == 0 {
				delete(m, k)
			}
		case []any:
			for _, e := range c {
				if em, ok := e.(map[string]any); ok {
					pruneEmptyMaps(em)
				}
			}
		}
	}
}

// pruneNulls drops null fields (zero timestamps, nil pointers the converter kept): in an apply
// patch null means "remove", and a schema without nullable refuses it.
func pruneNulls(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			if child == nil {
				delete(t, k)
				continue
			}
			pruneNulls(child)
		}
	case []any:
		for _, child := range t {
			pruneNulls(child)
		}
	}
}
