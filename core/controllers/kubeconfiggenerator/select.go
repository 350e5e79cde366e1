package kubeconfiggenerator

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/cachestore"
)

// selectorError is a selector the apiserver accepted but that does not parse (an unknown
// operator...): reported in the status, never retried as an API failure.
type selectorError struct {
	field string
	err   error
}

func (e *selectorError) Error() string { return fmt.Sprintf("%s: %v", e.field, e.err) }

// selectors parses the generator's two selectors.
func selectors(gen *kamajiv1alpha1.KubeconfigGenerator) (ns, tcp labels.Selector, err error) {
	if ns, err = metav1.LabelSelectorAsSelector(&gen.Spec.NamespaceSelector); err != nil {
		return nil, nil, &selectorError{field: "spec.namespaceSelector", err: err}
	}
	if tcp, err = metav1.LabelSelectorAsSelector(&gen.Spec.TenantControlPlaneSelector); err != nil {
		return nil, nil, &selectorError{field: "spec.tenantControlPlaneSelector", err: err}
	}
	return ns, tcp, nil
}

// selectTargets lists the TCPs the generator matches, sorted by namespace and name: those of
// the Namespaces namespaceSelector selects whose labels tenantControlPlaneSelector selects. A
// TCP being deleted is not a target (its Secret goes first). They are the cache's own, read in
// place (a List would copy every matching TCP at every pass): never change them.
func (r *Reconciler) selectTargets(ctx context.Context, gen *kamajiv1alpha1.KubeconfigGenerator) ([]*kamajiv1alpha1.TenantControlPlane, error) {
	nsSel, tcpSel, err := selectors(gen)
	if err != nil {
		return nil, err
	}
	namespaces := &corev1.NamespaceList{}
	if err := r.Client.List(ctx, namespaces, client.MatchingLabelsSelector{Selector: nsSel}); err != nil {
		return nil, err
	}
	selected := map[string]bool{}
	for _, ns := range namespaces.Items {
		selected[ns.Name] = true
	}
	tcps, err := cachestore.List[kamajiv1alpha1.TenantControlPlane](ctx, r.cache)
	if err != nil {
		return nil, err
	}
	var out []*kamajiv1alpha1.TenantControlPlane
	for _, tcp := range tcps {
		if selected[tcp.Namespace] && tcp.DeletionTimestamp.IsZero() && tcpSel.Matches(labels.Set(tcp.Labels)) {
			out = append(out, tcp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out, nil
}

// matches tells whether gen selects a TCP with these labels in a namespace with these labels
// (the watches' filter; selectTargets is the authority).
func matches(gen *kamajiv1alpha1.KubeconfigGenerator, nsLabels, tcpLabels map[string]string) bool {
	nsSel, tcpSel, err := selectors(gen)
	if err != nil {
		return true // let the reconcile report it
	}
	return nsSel.Matches(labels.Set(nsLabels)) && tcpSel.Matches(labels.Set(tcpLabels))
}

// key is a TCP's namespace/name, as status.errors names it.
func key(tcp *kamajiv1alpha1.TenantControlPlane) string { return tcp.Namespace + "/" + tcp.Name }
