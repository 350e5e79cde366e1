package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KubeconfigGeneratorLabel marks each Secret a KubeconfigGenerator writes with the generator's
// name (besides ManagedByLabel and NameLabel, the TenantControlPlane's name): the generator
// finds its Secrets by it, and never writes over a Secret that lacks it.
const KubeconfigGeneratorLabel = "kamaji.clastix.io/kubeconfig-generator"

// DefaultControlPlaneEndpointFrom is the default of spec.controlPlaneEndpointFrom.
const DefaultControlPlaneEndpointFrom = "admin.svc"

// CompoundValue is either a static value or one read from the TenantControlPlane; exactly one
// of the two is set.
//
// +kubebuilder:validation:XValidation:rule="(has(self.stringValue) || has(self.fromDefinition)) && !(has(self.stringValue) && has(self.fromDefinition))",message="Either stringValue or fromDefinition must be set, but not both."
type CompoundValue struct {
	// StringValue is used as it is.
	// +optional
	StringValue string `json:"stringValue,omitempty"`
	// FromDefinition is a dot-separated path into the TenantControlPlane the kubeconfig is
	// generated for, such as metadata.name or metadata.namespace; the field must hold a
	// string, a number or a boolean.
	// +optional
	FromDefinition string `json:"fromDefinition,omitempty"`
}

// KubeconfigGeneratorSpec defines the desired state of KubeconfigGenerator.
type KubeconfigGeneratorSpec struct {
	// NamespaceSelector selects the Namespaces whose TenantControlPlanes get a kubeconfig;
	// empty selects every Namespace.
	// +optional
	NamespaceSelector metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// TenantControlPlaneSelector selects, by their labels, the TenantControlPlanes that get a
	// kubeconfig; empty selects every TenantControlPlane of the selected Namespaces.
	// +optional
	TenantControlPlaneSelector metav1.LabelSelector `json:"tenantControlPlaneSelector,omitempty"`
	// Groups are the groups of the kubeconfig's user: the Organization entries of its client
	// certificate.
	// +optional
	Groups []CompoundValue `json:"groups,omitempty"`
	// User is the kubeconfig's user name: the Common Name of its client certificate.
	User CompoundValue `json:"user"`
	// ControlPlaneEndpointFrom is the key of the TenantControlPlane's admin kubeconfig Secret
	// (<name>-admin-kubeconfig) whose server URL the generated kubeconfig dials: admin.svc
	// (the tenant's Service, from inside the admin cluster) or admin.conf (its public
	// endpoint), or their super-admin variants.
	// +kubebuilder:default="admin.svc"
	// +optional
	ControlPlaneEndpointFrom string `json:"controlPlaneEndpointFrom,omitempty"`
}

// KubeconfigGeneratorStatusError is a TenantControlPlane whose kubeconfig could not be
// generated, and why.
type KubeconfigGeneratorStatusError struct {
	// Resource is the TenantControlPlane, as namespace/name.
	Resource string `json:"resource"`
	// Message tells why its kubeconfig could not be generated on the last run.
	Message string `json:"message"`
}

// KubeconfigGeneratorStatus defines the observed state of KubeconfigGenerator.
type KubeconfigGeneratorStatus struct {
	// Resources is how many TenantControlPlanes the selectors match.
	// +kubebuilder:validation:Minimum=0
	Resources int `json:"resources"`
	// AvailableResources is how many of them have a current kubeconfig Secret; errors lists
	// the others.
	// +kubebuilder:validation:Minimum=0
	AvailableResources int `json:"availableResources"`
	// Errors lists the TenantControlPlanes whose kubeconfig could not be generated.
	// +optional
	Errors []KubeconfigGeneratorStatusError `json:"errors,omitempty"`
}

// KubeconfigGenerator writes a kubeconfig Secret, signed by the tenant's CA, for every
// TenantControlPlane its selectors match, and keeps it renewed.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=kc
// +kubebuilder:printcolumn:name="Resources",type="integer",JSONPath=".status.resources",description="Matching TenantControlPlanes"
// +kubebuilder:printcolumn:name="Available",type="integer",JSONPath=".status.availableResources",description="Kubeconfigs generated"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp",description="Age"
type KubeconfigGenerator struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   KubeconfigGeneratorSpec   `json:"spec,omitempty"`
	Status KubeconfigGeneratorStatus `json:"status,omitempty"`
}

// KubeconfigGeneratorList contains a list of KubeconfigGenerator.
//
// +kubebuilder:object:root=true
type KubeconfigGeneratorList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KubeconfigGenerator `json:"items"`
}

func init() {
	SchemeBuilder.Register(&KubeconfigGenerator{}, &KubeconfigGeneratorList{})
}
