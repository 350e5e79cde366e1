package apply

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Delete removes obj (a typed object, an unstructured one or its PartialObjectMetadata) in the
// background; an object already gone is not an error. Deleting is how the core removes what it
// no longer declares as a whole: an Ingress no longer asked for, an addon object a new render
// no longer has.
func Delete(ctx context.Context, c client.Client, obj client.Object) error {
	policy := metav1.DeletePropagationBackground
	err := c.Delete(ctx, obj, &client.DeleteOptions{PropagationPolicy: &policy})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
