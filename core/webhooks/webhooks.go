// Package webhooks holds the admission webhooks the manager serves: TenantControlPlane
// defaulting and validation, DataStore validation, and the handler tenant apiservers call to
// refuse the writes a frozen or write-limited tenant blocks (TenantDenyPath). Each validation rule is a pure function in
// a file of its own; the handlers decode the request, run the rules and answer with an Invalid
// status whose causes name the fields.
package webhooks

import (
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// Paths the handlers are served on; they match the +kubebuilder:webhook markers.
const (
	TCPMutatePath         = "/mutate-kamaji-clastix-io-v1alpha1-tenantcontrolplane"
	TCPValidatePath       = "/validate-kamaji-clastix-io-v1alpha1-tenantcontrolplane"
	DataStoreValidatePath = "/validate-kamaji-clastix-io-v1alpha1-datastore"
)

// The TCP webhooks are not called for the updates they would let through unchanged (the
// matchConditions, evaluated by the apiserver): each call costs the apiserver and the manager
// a round trip carrying the TCP twice, and the manager's finalizer write, a user's label or
// any metadata-only write would otherwise make two. The defaulter is called on every create,
// every update that changes the spec, and every update of a TCP whose spec lacks a slice name
// or its DataStore (one created without this webhook: those fields are filled from its status,
// as DefaultTenantControlPlane does, before any pass can use them); the other fields it fills
// were filled at creation. The validator is called on every create, every update that changes
// the generation (the spec) and every update that changes an annotation: the rest it allows
// without a look (tcpValidator.Handle).
// +kubebuilder:webhook:path=/mutate-kamaji-clastix-io-v1alpha1-tenantcontrolplane,mutating=true,failurePolicy=fail,sideEffects=None,groups=kamaji.clastix.io,resources=tenantcontrolplanes,verbs=create;update,versions=v1alpha1,name=mtenantcontrolplane.kb.io,admissionReviewVersions=v1,patch=`{"matchConditions":[{"name":"spec-changed-or-incomplete","expression":"request.operation != 'UPDATE' || object.spec != oldObject.spec || !has(object.spec.dataStore) || object.spec.dataStore == '' || !has(object.spec.dataStoreSchema) || object.spec.dataStoreSchema == '' || !has(object.spec.dataStoreUsername) || object.spec.dataStoreUsername == ''"}]}`
// +kubebuilder:webhook:path=/validate-kamaji-clastix-io-v1alpha1-tenantcontrolplane,mutating=false,failurePolicy=fail,sideEffects=None,groups=kamaji.clastix.io,resources=tenantcontrolplanes,verbs=create;update,versions=v1alpha1,name=vtenantcontrolplane.kb.io,admissionReviewVersions=v1,patch=`{"matchConditions":[{"name":"generation-or-annotations-changed","expression":"request.operation != 'UPDATE' || !has(object.metadata.generation) || !has(oldObject.metadata.generation) || object.metadata.generation != oldObject.metadata.generation || (has(object.metadata.annotations) ? object.metadata.annotations : {}) != (has(oldObject.metadata.annotations) ? oldObject.metadata.annotations : {})"}]}`
// +kubebuilder:webhook:path=/validate-kamaji-clastix-io-v1alpha1-datastore,mutating=false,failurePolicy=fail,sideEffects=None,groups=kamaji.clastix.io,resources=datastores,verbs=create;update;delete,versions=v1alpha1,name=vdatastore.kb.io,admissionReviewVersions=v1

// Drivers tells which datastore drivers this installation can serve.
type Drivers interface {
	// Served reports whether a configured plugin serves the driver.
	Served(driver string) bool
	// Names lists the served drivers, for error messages.
	Names() []string
}

// Options configure the webhooks.
type Options struct {
	// DefaultDataStore is the manager's --datastore: the DataStore of TCPs that name none.
	DefaultDataStore string
	// Drivers served by the configured plugins.
	Drivers Drivers
	// Slices asks the drivers whether they accept a new tenant's names; nil skips that check.
	Slices SliceValidator
	// Addons served by the configured plugins; nil skips that check.
	Addons Served
}

// Served tells which addons this installation can render.
type Served interface {
	Served(name string) bool
	Names() []string
}

// Register adds the handlers to the manager's webhook server. c reads from the API server;
// cached, the manager's cache with the SliceIndex of TCPs, is for what every TCP's admission
// would otherwise list from the API server (nil: c, every TCP).
func Register(srv webhook.Server, c, cached client.Reader, mapper meta.RESTMapper, opts Options) {
	srv.Register(TCPMutatePath, &admission.Webhook{Handler: &tcpDefaulter{opts: opts, reader: c}})
	srv.Register(TCPValidatePath, &admission.Webhook{Handler: &tcpValidator{opts: opts, reader: c, cached: cached, mapper: mapper}})
	srv.Register(DataStoreValidatePath, &admission.Webhook{Handler: &dataStoreValidator{opts: opts, reader: c}})
	srv.Register(TenantDenyPath, TenantDenyWebhook())
}

// invalid answers with a 422 Invalid status listing every field error, as the apiserver's own
// validation does, so kubectl prints "<field>: <reason>" lines.
func invalid(gk schema.GroupKind, name string, errs field.ErrorList) admission.Response {
	status := apierrors.NewInvalid(gk, name, errs).ErrStatus
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &status}}
}

var (
	tcpGK       = kamajiv1alpha1.GroupVersion.WithKind("TenantControlPlane").GroupKind()
	dataStoreGK = kamajiv1alpha1.GroupVersion.WithKind("DataStore").GroupKind()
)

func errored(err error) admission.Response {
	return admission.Errored(http.StatusInternalServerError, err)
}
