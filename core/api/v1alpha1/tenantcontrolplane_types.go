package v1alpha1

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TenantControlPlaneSpec defines the desired state of TenantControlPlane.
//
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.dataStore) || has(self.dataStore)",message="unsetting the dataStore is not supported"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.dataStoreSchema) || has(self.dataStoreSchema)",message="unsetting the dataStoreSchema is not supported"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.dataStoreUsername) || has(self.dataStoreUsername)",message="unsetting the dataStoreUsername is not supported"
// +kubebuilder:validation:XValidation:rule="!has(self.networkProfile) || !has(self.networkProfile.loadBalancerSourceRanges) || size(self.networkProfile.loadBalancerSourceRanges) == 0 || self.controlPlane.service.serviceType == 'LoadBalancer'",message="LoadBalancer source ranges are supported only with LoadBalancer service type",fieldPath=".networkProfile.loadBalancerSourceRanges"
// +kubebuilder:validation:XValidation:rule="!has(self.networkProfile) || !has(self.networkProfile.loadBalancerClass) || self.controlPlane.service.serviceType == 'LoadBalancer'",message="LoadBalancerClass is supported only with LoadBalancer service type",fieldPath=".networkProfile.loadBalancerClass"
// +kubebuilder:validation:XValidation:rule="self.controlPlane.service.serviceType != 'LoadBalancer' || oldSelf.controlPlane.service.serviceType != 'LoadBalancer' || (has(self.networkProfile) && has(self.networkProfile.loadBalancerClass)) == (has(oldSelf.networkProfile) && has(oldSelf.networkProfile.loadBalancerClass))",message="LoadBalancerClass cannot be set or unset at runtime",fieldPath=".networkProfile.loadBalancerClass"
type TenantControlPlaneSpec struct {
	// DataStore specifies the DataStore that should be used to store the Kubernetes data for the given Tenant Control Plane.
	// When left empty, the manager's --datastore default is used. Changing it migrates the tenant; unsetting it is refused.
	// +optional
	DataStore string `json:"dataStore,omitempty"`
	// DataStoreSchema is the name of the database, key prefix or bucket that holds this tenant's data.
	// Defaulted on creation to a name unique to this TenantControlPlane and valid for every driver; immutable.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="changing the dataStoreSchema is not supported"
	DataStoreSchema string `json:"dataStoreSchema,omitempty"`
	// DataStoreUsername is the user this tenant authenticates with on its DataStore.
	// Defaulted on creation like dataStoreSchema; immutable.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="changing the dataStoreUsername is not supported"
	DataStoreUsername string `json:"dataStoreUsername,omitempty"`
	// DataStoreOverrides lets specific resources be stored in another etcd DataStore
	// (kube-apiserver --etcd-servers-overrides), such as events.
	// +optional
	DataStoreOverrides []DataStoreOverride `json:"dataStoreOverrides,omitempty"`

	ControlPlane ControlPlane `json:"controlPlane"`
	// Kubernetes specification for tenant control plane
	Kubernetes KubernetesSpec `json:"kubernetes"`
	// NetworkProfile specifies how the network is. Left out, it is an empty one, whose fields
	// take their defaults before the defaulting webhook derives serviceCidrs and dnsServiceIPs
	// from them.
	// +kubebuilder:default={}
	// +optional
	NetworkProfile NetworkProfileSpec `json:"networkProfile,omitempty"`
	// Addons contain which addons are enabled
	// +optional
	Addons AddonsSpec `json:"addons,omitempty"`
	// WritePermissions blocks writes to the tenant cluster: its status becomes WriteLimited.
	// +optional
	WritePermissions Permissions `json:"writePermissions,omitempty"`
}

// DataStoreOverride stores one resource of the tenant in another DataStore.
type DataStoreOverride struct {
	// Resource specifies which kubernetes resource to target, such as /events.
	// +kubebuilder:validation:MinLength=1
	Resource string `json:"resource,omitempty"`
	// DataStore specifies the DataStore that should be used to store the Kubernetes data for the given Resource.
	// +kubebuilder:validation:MinLength=1
	DataStore string `json:"dataStore,omitempty"`
}

// Permissions blocks kinds of writes to the tenant cluster.
type Permissions struct {
	// +kubebuilder:default=false
	BlockCreate bool `json:"blockCreation,omitempty"`
	// +kubebuilder:default=false
	BlockUpdate bool `json:"blockUpdate,omitempty"`
	// +kubebuilder:default=false
	BlockDelete bool `json:"blockDeletion,omitempty"`
}

// HasAnyLimitation tells whether any write is blocked.
func (p Permissions) HasAnyLimitation() bool {
	return p.BlockCreate || p.BlockUpdate || p.BlockDelete
}

// AdditionalMetadata are labels and annotations added to a created object.
type AdditionalMetadata struct {
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// TenantControlPlane is the Schema for the tenantcontrolplanes API.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.controlPlane.deployment.replicas,statuspath=.status.kubernetesResources.deployment.replicas,selectorpath=.status.kubernetesResources.deployment.selector
// +kubebuilder:resource:shortName=tcp
// +kubebuilder:printcolumn:name="Version",type="string",JSONPath=".spec.kubernetes.version",description="Kubernetes version"
// +kubebuilder:printcolumn:name="Installed Version",type="string",JSONPath=".status.kubernetesResources.version.version",description="The actual installed Kubernetes version from status"
// +kubebuilder:printcolumn:name="Status",type="string",JSONPath=".status.kubernetesResources.version.status",description="Status"
// +kubebuilder:printcolumn:name="Control-Plane-Endpoint",type="string",JSONPath=".status.controlPlaneEndpoint",description="Tenant Control Plane Endpoint (API server)"
// +kubebuilder:printcolumn:name="Kubeconfig",type="string",JSONPath=".status.kubeconfig.admin.secretName",description="Secret which contains admin kubeconfig"
// +kubebuilder:printcolumn:name="Datastore",type="string",JSONPath=".status.storage.dataStoreName",description="DataStore actually used"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp",description="Age"
type TenantControlPlane struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TenantControlPlaneSpec   `json:"spec,omitempty"`
	Status TenantControlPlaneStatus `json:"status,omitempty"`
}

// DataStoreNames lists, sorted and once each, the TCP's main and override DataStores by spec
// and by status: those whose status.usedBy names it. Until a migration switches, the spec names
// the target and the status the source, so both are in; from the switch until the source slice
// is deleted, the source is not (the DataStore deletion check reads status.storage.migration
// too, so the source is still protected then).
func (in *TenantControlPlane) DataStoreNames() []string {
	var out []string
	add := func(n string) {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	add(in.Spec.DataStore)
	add(in.Status.Storage.DataStoreName)
	for _, o := range in.Spec.DataStoreOverrides {
		add(o.DataStore)
	}
	for _, o := range in.Status.Storage.Overrides {
		add(o.DataStoreName)
	}
	slices.Sort(out)
	return out
}

// TenantControlPlaneList contains a list of TenantControlPlane.
//
// +kubebuilder:object:root=true
type TenantControlPlaneList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TenantControlPlane `json:"items"`
}

func init() {
	SchemeBuilder.Register(&TenantControlPlane{}, &TenantControlPlaneList{})
}
