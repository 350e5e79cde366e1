package addons

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// PruneKinds are looked at when pruning, besides the kinds of the current render and those the
// core watches in the tenant: the kinds addons render. A kind a plugin rendered once and no
// longer renders is found through them (a DaemonSet replaced by a Deployment).
var PruneKinds = []schema.GroupVersionKind{
	{Version: "v1", Kind: "ConfigMap"},
	{Version: "v1", Kind: "Secret"},
	{Version: "v1", Kind: "Service"},
	{Version: "v1", Kind: "ServiceAccount"},
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Group: "apps", Version: "v1", Kind: "DaemonSet"},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleBinding"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "Role"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBinding"},
	{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget"},
}

// Selector selects an addon's objects.
func Selector(addon string) labels.Selector {
	return labels.SelectorFromSet(labels.Set{kamajiv1alpha1.ManagedByLabel: kamajiv1alpha1.ManagedByValue, kamajiv1alpha1.AddonLabel: addon})
}

// Stale lists the addon's objects in the tenant, among kinds, that keep (a set of Key) does
// not hold: what a new render no longer has, or everything when keep is empty. Objects handed
// over to their users ("*") are never stale. Kinds the tenant does not serve are skipped.
func Stale(ctx context.Context, c client.Client, addon string, kinds []schema.GroupVersionKind, keep map[string]bool) ([]*metav1.PartialObjectMetadata, error) {
	var out []*metav1.PartialObjectMetadata
	seen := map[schema.GroupKind]bool{}
	for _, gvk := range kinds {
		if seen[gvk.GroupKind()] {
			continue
		}
		seen[gvk.GroupKind()] = true
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.List(ctx, list, client.MatchingLabelsSelector{Selector: Selector(addon)}); err != nil {
			if meta.IsNoMatchError(err) {
				continue
			}
			return nil, fmt.Errorf("listing %s of %s: %w", gvk.Kind, addon, err)
		}
		for i := range list.Items {
			o := &list.Items[i]
			o.SetGroupVersionKind(gvk)
			if keep[Key(o)] || !o.DeletionTimestamp.IsZero() {
				continue
			}
			if all, _, _ := Ignored(o.Annotations[kamajiv1alpha1.AddonIgnoreAnnotation]); all {
				continue
			}
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b *metav1.PartialObjectMetadata) int {
		if x, y := Key(a), Key(b); x < y {
			return -1
		} else if x > y {
			return 1
		}
		return 0
	})
	return out, nil
}

func checksum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
