package kubeconfiggenerator

import (
	"context"
	"maps"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// SetupWithManager registers the controller. Besides the generators it watches:
//   - TCPs, mapped to the generators whose selectors match them (before or after the change),
//     and only for the changes a kubeconfig depends on: labels, spec (fromDefinition),
//     annotations, deletion, the CA and the admin kubeconfig (their checksums in the status);
//   - Namespaces whose labels change (namespaceSelector), mapped to every generator;
//   - the generated Secrets (labelled, so in the manager's cache), mapped to their generator:
//     one edited or deleted by hand is restored.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.cache = mgr.GetCache()
	return ctrl.NewControllerManagedBy(mgr).
		Named("kubeconfiggenerator").
		For(&kamajiv1alpha1.KubeconfigGenerator{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Watches(&kamajiv1alpha1.TenantControlPlane{}, handler.EnqueueRequestsFromMapFunc(r.forTCP), builder.WithPredicates(tcpChanged)).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.all), builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(forSecret), builder.WithPredicates(generated)).
		Complete(r)
}

// tcpChanged lets through the TCP updates that can change a generated kubeconfig: not the
// status churn of every reconcile pass.
var tcpChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*kamajiv1alpha1.TenantControlPlane)
	n, ok2 := e.ObjectNew.(*kamajiv1alpha1.TenantControlPlane)
	if !ok1 || !ok2 {
		return true
	}
	return o.Generation != n.Generation ||
		!maps.Equal(o.Labels, n.Labels) || !maps.Equal(o.Annotations, n.Annotations) ||
		o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero() ||
		!equality.Semantic.DeepEqual(o.Status.Certificates.CA, n.Status.Certificates.CA) ||
		!equality.Semantic.DeepEqual(o.Status.KubeConfig.Admin, n.Status.KubeConfig.Admin)
}}

// generated selects the Secrets a generator wrote.
var generated = predicate.NewPredicateFuncs(func(obj client.Object) bool {
	_, ok := obj.GetLabels()[kamajiv1alpha1.KubeconfigGeneratorLabel]
	return ok
})

func forSecret(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetLabels()[kamajiv1alpha1.KubeconfigGeneratorLabel]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
}

// forTCP maps a TCP to the generators that select it.
func (r *Reconciler) forTCP(ctx context.Context, obj client.Object) []reconcile.Request {
	gens := &kamajiv1alpha1.KubeconfigGeneratorList{}
	if err := r.Client.List(ctx, gens); err != nil {
		log.FromContext(ctx).Error(err, "listing KubeconfigGenerators")
		return nil
	}
	if len(gens.Items) == 0 {
		return nil
	}
	ns := &corev1.Namespace{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: obj.GetNamespace()}, ns); err != nil {
		// The namespace is going away (or the cache lags): let every generator look.
		return requests(gens)
	}
	var out []reconcile.Request
	for i := range gens.Items {
		if matches(&gens.Items[i], ns.Labels, obj.GetLabels()) {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: gens.Items[i].Name}})
		}
	}
	return out
}

// all maps to every generator.
func (r *Reconciler) all(ctx context.Context, _ client.Object) []reconcile.Request {
	gens := &kamajiv1alpha1.KubeconfigGeneratorList{}
	if err := r.Client.List(ctx, gens); err != nil {
		log.FromContext(ctx).Error(err, "listing KubeconfigGenerators")
		return nil
	}
	return requests(gens)
}

func requests(gens *kamajiv1alpha1.KubeconfigGeneratorList) []reconcile.Request {
	out := make([]reconcile.Request, 0, len(gens.Items))
	for i := range gens.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: gens.Items[i].Name}})
	}
	return out
}
