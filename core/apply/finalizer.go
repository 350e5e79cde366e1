package apply

import (
	"context"
	"encoding/json"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// finalizerManager owns only our finalizer entry, so declaring it never claims the object's
// spec, and dropping it removes exactly our entry.
const finalizerManager = "kamaji-finalizer"

// SetFinalizer adds (present=true) or removes our finalizer with a minimal apply.
func SetFinalizer(ctx context.Context, c client.Client, obj client.Object, finalizer string, present bool) error {
	gvk, err := apiutil.GVKForObject(obj, c.Scheme())
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	u.SetName(obj.GetName())
	u.SetNamespace(obj.GetNamespace())
	// The UID pins the apply to this very object: a finalizer must never create one.
	u.SetUID(obj.GetUID())
	if present {
		u.SetFinalizers([]string{finalizer})
	} else {
		u.SetFinalizers([]string{})
	}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(finalizerManager), client.ForceOwnership); err != nil {
		return err
	}
	obj.SetFinalizers(u.GetFinalizers())
	obj.SetResourceVersion(u.GetResourceVersion())
	return nil
}

// RemoveAnnotation drops an annotation another manager (a user's kubectl) set, such as a
// one-shot rotation request once it has been honoured. A JSON merge patch, since apply can
// only remove fields its own manager owns.
func RemoveAnnotation(ctx context.Context, c client.Client, obj client.Object, key string) error {
	if _, ok := obj.GetAnnotations()[key]; !ok {
		return nil
	}
	patch := []byte(`{"metadata":{"annotations":{"` + key + `":null}}}`)
	return c.Patch(ctx, obj, client.RawPatch("application/merge-patch+json", patch))
}

// SetAnnotation sets an annotation with a JSON merge patch, leaving the object's other fields
// and their managers alone (such as a rotation request passed on from one object to others);
// obj is updated from the answer.
func SetAnnotation(ctx context.Context, c client.Client, obj client.Object, key, value string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: value}}})
	if err != nil {
		return err
	}
	return c.Patch(ctx, obj, client.RawPatch("application/merge-patch+json", patch))
}
