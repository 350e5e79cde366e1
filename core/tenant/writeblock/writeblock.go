// Package writeblock builds what stops writes inside a tenant cluster: a
// ValidatingWebhookConfiguration in the tenant whose one webhook is served by the manager. The
// core uses it to freeze a tenant during a datastore migration (kamaji-freeze) and to enforce
// spec.writePermissions (kamaji-write-permissions), as Kamaji does.
//
// The configuration selects exactly the writes to refuse (operations, namespaces, users), and
// the manager's handler (core/webhooks, TenantDenyPath) refuses every request it receives with
// the message carried in the webhook's URL: it keeps no state. Its failure policy is Fail, so a
// tenant apiserver that cannot reach the manager still refuses the selected writes (with the
// call's error instead of the message) and nothing else. The configuration is stored in the
// tenant's own data, so a frozen tenant stays frozen on the copy of its data until the core
// lifts it there.
//
// Earlier versions installed a ValidatingAdmissionPolicy and binding of the same name: Apply and
// Remove delete them, so an upgraded tenant does not keep the old policy.
package writeblock

import (
	"context"
	"errors"
	"fmt"
	"net/url"
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
	// Name of the configuration, e.g. "kamaji-freeze"; its webhook is <Name>.kamaji.clastix.io.
	Name string
	// Operations refused: CREATE, UPDATE, DELETE.
	Operations []admissionregistrationv1.OperationType
	// Exempt namespaces, where every write still passes (kube-system, kube-node-lease...).
	Exempt []string
	// ExemptUsers may still write everywhere (the core's own identity in the tenant).
	ExemptUsers []string
	// Message is what a refused client reads.
	Message string
	// Webhook is where the tenant apiserver reaches the manager's deny handler; Remove and
	// Enforced do without it.
	Webhook Webhook
}

// Webhook locates the manager's deny handler as the tenant apiserver reaches it.
type Webhook struct {
	// URL of the handler, e.g. https://kamaji-webhook-service.kamaji-system.svc:443/tenant/deny;
	// the message is appended as one more path segment (the apiserver refuses query strings in
	// a webhook URL).
	URL string
	// CABundle is the PEM of the CA that signs the manager's webhook serving certificate.
	CABundle []byte
}

// TimeoutSeconds bounds each call of the tenant apiserver to the manager.
const TimeoutSeconds = 5

// WebhookName is the name of the configuration's one webhook.
func (b Block) WebhookName() string { return b.Name + ".kamaji.clastix.io" }

// MessageURL is the URL of handler at base carrying message: base + "/" + path-escaped message
// (MessageFromPath reads it back).
func MessageURL(base, message string) string {
	return strings.TrimSuffix(base, "/") + "/" + url.PathEscape(message)
}

// MessageFromPath is the message of a request to MessageURL(prefix, message), from the
// request's escaped path; false when the path is not under prefix.
func MessageFromPath(prefix, escapedPath string) (string, bool) {
	prefix = strings.TrimSuffix(prefix, "/") + "/"
	rest, ok := strings.CutPrefix(escapedPath, prefix)
	if !ok {
		return "", false
	}
	msg, err := url.PathUnescape(rest)
	if err != nil {
		return "", false
	}
	return msg, true
}

var managedBy = map[string]string{"app.kubernetes.io/managed-by": "kamaji"}

// Configuration is the ValidatingWebhookConfiguration. Its rules match every resource and
// subresource of every group (the webhook configurations and admission policies excepted,
// which the apiserver never submits to a webhook); the namespace selector skips the exempt
// namespaces by name and matches cluster-scoped objects; a match condition skips the exempt
// users.
func (b Block) Configuration() (*admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	switch {
	case b.Webhook.URL == "":
		return nil, fmt.Errorf("%s: no URL at which the tenant apiserver reaches the manager's webhook", b.Name)
	case len(b.Webhook.CABundle) == 0:
		return nil, fmt.Errorf("%s: no CA bundle for the manager's webhook serving certificate", b.Name)
	case len(b.Operations) == 0:
		return nil, fmt.Errorf("%s: no operation to block", b.Name)
	}
	w := admissionregistrationv1.ValidatingWebhook{
		Name: b.WebhookName(),
		ClientConfig: admissionregistrationv1.WebhookClientConfig{
			URL:      ptr.To(MessageURL(b.Webhook.URL, b.Message)),
			CABundle: b.Webhook.CABundle,
		},
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: b.Operations,
			Rule: admissionregistrationv1.Rule{
				APIGroups: []string{"*"}, APIVersions: []string{"*"}, Resources: []string{"*/*"}, // every resource and subresource
				Scope: ptr.To(admissionregistrationv1.AllScopes),
			},
		}},
		// Unreachable manager: the selected writes are still refused, nothing else is.
		FailurePolicy: ptr.To(admissionregistrationv1.Fail),
		MatchPolicy:   ptr.To(admissionregistrationv1.Equivalent),
		// None: dry-run requests reach it too, which Enforced relies on.
		SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
		TimeoutSeconds:          ptr.To[int32](TimeoutSeconds),
		AdmissionReviewVersions: []string{"v1"},
		ObjectSelector:          &metav1.LabelSelector{},
	}
	w.NamespaceSelector = &metav1.LabelSelector{}
	if len(b.Exempt) > 0 {
		w.NamespaceSelector.MatchExpressions = []metav1.LabelSelectorRequirement{{
			Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpNotIn, Values: b.Exempt,
		}}
	}
	if len(b.ExemptUsers) > 0 {
		quoted := make([]string, len(b.ExemptUsers))
		for i, u := range b.ExemptUsers {
			quoted[i] = strconv.Quote(u)
		}
		w.MatchConditions = []admissionregistrationv1.MatchCondition{{
			Name:       "not-exempt-user",
			Expression: "!(request.userInfo.username in [" + strings.Join(quoted, ", ") + "])",
		}}
	}
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: b.Name, Labels: managedBy},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{w},
	}, nil
}

// Install applies the configuration in the tenant (server-side apply with manager).
func (b Block) Install(ctx context.Context, c client.Client, manager string) error {
	cfg, err := b.Configuration()
	if err != nil {
		return err
	}
	if err := apply.ApplyAs(ctx, c, cfg, manager); err != nil {
		return fmt.Errorf("ValidatingWebhookConfiguration %s: %w", b.Name, err)
	}
	return nil
}

// Apply installs the block in the tenant, removes the admission policy of the same name an
// earlier version installed (after: the block never lapses), and reports whether the block is
// enforced yet: the apiserver loads webhook configurations asynchronously, so enforcement is
// checked with a dry-run create in a namespace the block covers.
func (b Block) Apply(ctx context.Context, c client.Client, manager, probeNamespace string) (bool, error) {
	if err := b.Install(ctx, c, manager); err != nil {
		return false, err
	}
	if err := b.RemoveLegacy(ctx, c); err != nil {
		return false, err
	}
	return b.Enforced(ctx, c, probeNamespace)
}

// Enforced reports whether a dry-run create of a ConfigMap in namespace is refused by the
// block: with its message, or, when the tenant apiserver cannot call the manager, with the
// failed call of its webhook (the failure policy refuses the write all the same).
func (b Block) Enforced(ctx context.Context, c client.Client, namespace string) (bool, error) {
	probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: "kamaji-writeblock-probe-"}}
	err := c.Create(ctx, probe, client.DryRunAll)
	switch {
	case err == nil:
		return false, nil
	case strings.Contains(err.Error(), b.Message), strings.Contains(err.Error(), `failed calling webhook "`+b.WebhookName()+`"`):
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
	m.Add(admission.WithKind("ValidatingWebhookConfiguration"), meta.RESTScopeRoot)
	m.Add(admission.WithKind("ValidatingAdmissionPolicy"), meta.RESTScopeRoot)
	m.Add(admission.WithKind("ValidatingAdmissionPolicyBinding"), meta.RESTScopeRoot)
	m.Add(corev1.SchemeGroupVersion.WithKind("ConfigMap"), meta.RESTScopeNamespace)
	return m
}

// Remove deletes the block from the tenant, and the admission policy of the same name an
// earlier version installed; an absent block is not an error.
func (b Block) Remove(ctx context.Context, c client.Client) error {
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: b.Name}}
	return errors.Join(deleteAbsentOK(ctx, c, cfg, "ValidatingWebhookConfiguration"), b.RemoveLegacy(ctx, c))
}

// RemoveLegacy deletes the ValidatingAdmissionPolicy and binding named Name that earlier
// versions installed instead of the webhook configuration; absent ones (or an apiserver that
// serves no such kind) are not an error.
func (b Block) RemoveLegacy(ctx context.Context, c client.Client) error {
	return errors.Join(
		deleteAbsentOK(ctx, c, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: b.Name}}, "ValidatingAdmissionPolicyBinding"),
		deleteAbsentOK(ctx, c, &admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: b.Name}}, "ValidatingAdmissionPolicy"),
	)
}

func deleteAbsentOK(ctx context.Context, c client.Client, obj client.Object, kind string) error {
	err := c.Delete(ctx, obj)
	if err == nil || apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return nil
	}
	return fmt.Errorf("deleting %s %s: %w", kind, obj.GetName(), err)
}
