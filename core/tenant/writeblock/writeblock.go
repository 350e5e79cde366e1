// Package writeblock builds what stops writes inside a tenant cluster: a
// ValidatingAdmissionPolicy and its binding, enforced by the tenant's own kube-apiserver. The
// core uses it to freeze a tenant during a datastore migration.
//
// A policy rather than a webhook served by the manager: the tenant apiserver enforces it with no
// network path to the admin cluster, so it neither lapses when the manager is unreachable nor
// blocks the tenant when the manager is gone; and it is stored in the tenant's own data, so a
// frozen tenant stays frozen on the copy of its data until the core lifts it there.
package writeblock

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openhcp/kamaji/core/apply"
)

// Block describes the writes to refuse.
type Block struct {
	// Name of the policy and of its binding, e.g. "kamaji-freeze".
	Name string
	// Operations refused: CREATE, UPDATE, DELETE.
	Operations []admissionregistrationv1.OperationType
	// Exempt namespaces, where every write still passes (kube-system, kube-node-lease...).
	Exempt []string
	// ExemptUsers may still write everywhere (the core's own identity in the tenant).
	ExemptUsers []string
	// Message is what a refused client reads.
	Message string
}

// Objects are the policy and its binding. They match every resource of every group (the
// admission policies themselves excepted, which the apiserver never submits to a policy), so
// cluster-scoped writes are refused too.
func (b Block) Objects() (*admissionregistrationv1.ValidatingAdmissionPolicy, *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
	list := func(items []string) string {
		quoted := make([]string, len(items))
		for i, s := range items {
			quoted[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(quoted, ", ") + "]"
	}
	// request.namespace is "" for cluster-scoped objects: refused unless exempt.
	expression := "request.namespace in " + list(b.Exempt)
	if len(b.ExemptUsers) > 0 {
		expression += " || request.userInfo.username in " + list(b.ExemptUsers)
	}
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: b.Name, Labels: map[string]string{"app.kubernetes.io/managed-by": "kamaji"}},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: b.Operations,
						Rule: admissionregistrationv1.Rule{
							APIGroups: []string{"*"}, APIVersions: []string{"*"}, Resources: []string{"*/*"}, // every resource and subresource
							Scope: ptr.To(admissionregistrationv1.AllScopes),
						},
					},
				}},
			},
			Validations: []admissionregistrationv1.Validation{{
				Expression: expression,
				Message:    b.Message,
				Reason:     ptr.To(metav1.StatusReasonForbidden),
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: b.Name, Labels: map[string]string{"app.kubernetes.io/managed-by": "kamaji"}},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        b.Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
	return policy, binding
}

// Apply installs the block in the tenant (server-side apply with manager) and reports whether
// it is enforced yet: the apiserver loads policies asynchronously, so enforcement is checked
// with a dry-run create in a namespace the block covers.
func (b Block) Apply(ctx context.Context, c client.Client, manager, probeNamespace string) (bool, error) {
	policy, binding := b.Objects()
	if err := apply.ApplyAs(ctx, c, policy, manager); err != nil {
		return false, fmt.Errorf("policy %s: %w", b.Name, err)
	}
	if err := apply.ApplyAs(ctx, c, binding, manager); err != nil {
		return false, fmt.Errorf("policy binding %s: %w", b.Name, err)
	}
	return b.Enforced(ctx, c, probeNamespace)
}

// Enforced reports whether a dry-run create of a ConfigMap in namespace is refused with the
// block's message.
func (b Block) Enforced(ctx context.Context, c client.Client, namespace string) (bool, error) {
	probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: "kamaji-writeblock-probe-"}}
	err := c.Create(ctx, probe, client.DryRunAll)
	switch {
	case err == nil:
		return false, nil
	case strings.Contains(err.Error(), b.Message):
		return true, nil
	case apierrors.IsNotFound(err):
		return false, fmt.Errorf("probing the block: namespace %s does not exist", namespace)
	}
	return false, fmt.Errorf("probing the block: %w", err)
}

// RESTMapper maps the kinds Apply, Enforced and Remove use, for a client that skips discovery.
func RESTMapper() meta.RESTMapper {
	admission := admissionregistrationv1.SchemeGroupVersion
	m := meta.NewDefaultRESTMapper([]schema.GroupVersion{admission, corev1.SchemeGroupVersion})
	m.Add(admission.WithKind("ValidatingAdmissionPolicy"), meta.RESTScopeRoot)
	m.Add(admission.WithKind("ValidatingAdmissionPolicyBinding"), meta.RESTScopeRoot)
	m.Add(corev1.SchemeGroupVersion.WithKind("ConfigMap"), meta.RESTScopeNamespace)
	return m
}

// Remove deletes the block from the tenant; an absent block is not an error.
func (b Block) Remove(ctx context.Context, c client.Client) error {
	policy, binding := b.Objects()
	var errs []error
	for _, obj := range []client.Object{binding, policy} {
		if err := c.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
