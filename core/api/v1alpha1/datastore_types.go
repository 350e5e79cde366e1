package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Built-in datastore drivers. Other names are accepted when a configured plugin serves them.
const (
	DriverEtcd       = "etcd"
	DriverMySQL      = "MySQL"
	DriverPostgreSQL = "PostgreSQL"
	DriverNATS       = "NATS"
)

// BuiltinDrivers are the driver names every installation accepts.
var BuiltinDrivers = []string{DriverEtcd, DriverMySQL, DriverPostgreSQL, DriverNATS}

// ContentRef is a value given inline (content) or read from a Secret key (secretReference).
type ContentRef struct {
	// Bare content of the file, base64 encoded.
	// It has precedence over the SecretReference value.
	// +optional
	Content []byte `json:"content,omitempty"`
	// +optional
	SecretRef *SecretReference `json:"secretReference,omitempty"`
}

// SecretReference points at one key of a Secret.
type SecretReference struct {
	// Name is unique within a namespace to reference a secret resource.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name,omitempty"`
	// Namespace defines the space within which the secret name must be unique.
	// +kubebuilder:validation:MinLength=1
	Namespace string `json:"namespace,omitempty"`
	// Name of the key for the given Secret reference where the content is stored.
	// This value is mandatory.
	// +kubebuilder:validation:MinLength=1
	KeyPath string `json:"keyPath"`
}

// CertKeyPair is a certificate with an optional private key.
type CertKeyPair struct {
	Certificate ContentRef `json:"certificate"`
	// +optional
	PrivateKey *ContentRef `json:"privateKey,omitempty"`
}

// ClientCertificate is the certificate and key the core uses to reach the datastore.
type ClientCertificate struct {
	Certificate ContentRef `json:"certificate"`
	PrivateKey  ContentRef `json:"privateKey"`
}

// TLSConfig holds the certificates needed to talk to the datastore over TLS.
type TLSConfig struct {
	// Retrieve the Certificate Authority certificate and private key, such as bare content of the file, or a SecretReference.
	// The key reference is required since etcd authentication is based on certificates, and Kamaji is responsible in creating this.
	CertificateAuthority CertKeyPair `json:"certificateAuthority"`
	// Specifies the SSL/TLS key and private key pair used to connect to the data store.
	// +optional
	ClientCertificate *ClientCertificate `json:"clientCertificate,omitempty"`
}

// BasicAuth is a username and password pair.
type BasicAuth struct {
	Username ContentRef `json:"username"`
	Password ContentRef `json:"password"`
}

// DataStoreSpec defines the desired state of DataStore.
//
// +kubebuilder:validation:XValidation:rule="self.driver != 'etcd' || (has(self.tlsConfig) && has(self.tlsConfig.certificateAuthority.privateKey) && (has(self.tlsConfig.certificateAuthority.privateKey.secretReference) || has(self.tlsConfig.certificateAuthority.privateKey.content)))",message="certificateAuthority privateKey must have secretReference or content when driver is etcd"
// +kubebuilder:validation:XValidation:rule="self.driver != 'etcd' || (has(self.tlsConfig) && has(self.tlsConfig.clientCertificate) && (has(self.tlsConfig.clientCertificate.certificate.secretReference) || has(self.tlsConfig.clientCertificate.certificate.content)))",message="clientCertificate must have secretReference or content when driver is etcd"
// +kubebuilder:validation:XValidation:rule="self.driver != 'etcd' || (has(self.tlsConfig) && has(self.tlsConfig.clientCertificate) && (has(self.tlsConfig.clientCertificate.privateKey.secretReference) || has(self.tlsConfig.clientCertificate.privateKey.content)))",message="clientCertificate privateKey must have secretReference or content when driver is etcd"
// +kubebuilder:validation:XValidation:rule="self.driver == 'etcd' || !has(self.tlsConfig) || !has(self.tlsConfig.clientCertificate) || has(self.tlsConfig.clientCertificate.certificate.secretReference) || has(self.tlsConfig.clientCertificate.certificate.content)",message="When driver is not etcd and tlsConfig exists, clientCertificate must be null or contain valid content"
// +kubebuilder:validation:XValidation:rule="self.driver == 'etcd' || !has(self.basicAuth) || has(self.basicAuth.username.secretReference) || has(self.basicAuth.username.content)",message="When driver is not etcd and basicAuth exists, username must have secretReference or content"
// +kubebuilder:validation:XValidation:rule="self.driver == 'etcd' || !has(self.basicAuth) || has(self.basicAuth.password.secretReference) || has(self.basicAuth.password.content)",message="When driver is not etcd and basicAuth exists, password must have secretReference or content"
// +kubebuilder:validation:XValidation:rule="self.driver == 'etcd' || has(self.tlsConfig) || has(self.basicAuth)",message="When driver is not etcd, either tlsConfig or basicAuth must be provided"
type DataStoreSpec struct {
	// The driver to use to connect to the shared datastore: etcd, MySQL, PostgreSQL, NATS, or the
	// name of a driver served by a configured datastore plugin.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="Datastore driver is immutable"
	Driver string `json:"driver"`
	// List of the endpoints to connect to the shared datastore.
	// No need for protocol, just bare IP/FQDN and port.
	// +kubebuilder:validation:MinItems=1
	Endpoints []string `json:"endpoints"`
	// In case of authentication enabled for the given data store, specifies the username and password pair.
	// This value is optional.
	// +optional
	BasicAuth *BasicAuth `json:"basicAuth,omitempty"`
	// Defines the TLS/SSL configuration required to connect to the data store in a secure way.
	// This value is optional.
	// +optional
	TLSConfig *TLSConfig `json:"tlsConfig,omitempty"`
	// Driver-specific settings, passed as they are to the plugin that serves the driver (for
	// example kineImage or sslmode for the kine-based drivers); the plugin validates them, and
	// one it refuses is named in the DataStore's ConfigValid condition. Not in Kamaji's API.
	// +optional
	Parameters map[string]string `json:"parameters,omitempty"`
}

// PluginStatus records the plugin that serves a DataStore's driver.
type PluginStatus struct {
	// Name of the plugin as it reports itself.
	Name string `json:"name,omitempty"`
	// Version is the plugin's own release version.
	Version string `json:"version,omitempty"`
	// Protocol is the plugin protocol version negotiated with the core.
	Protocol int32 `json:"protocol,omitempty"`
}

// DataStoreStatus defines the observed state of DataStore.
type DataStoreStatus struct {
	// List of the Tenant Control Planes, namespaced named, using this data store.
	// +optional
	UsedBy []string `json:"usedBy,omitempty"`
	// Plugin that serves this DataStore's driver.
	// +optional
	Plugin *PluginStatus `json:"plugin,omitempty"`
	// Usage sums what the TenantControlPlanes of this DataStore store on it, as the driver last
	// reported each (drivers with the USAGE capability; each tenant is counted about every 5
	// minutes, a few per pass), dated by the newest report; each TCP's share is in its
	// status.storage.usage.
	// +optional
	Usage *DataStoreUsage `json:"usage,omitempty"`
	// Ready tells whether the DataStore can host tenants: the status of the Ready condition.
	// +optional
	Ready bool `json:"ready"`
	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, PluginReady, ConfigValid.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// DataStoreUsage is the sum of the tenants' usage on a DataStore.
type DataStoreUsage struct {
	StorageUsage `json:",inline"`
	// Tenants is how many tenants the sum covers: those counted at least once.
	Tenants int32 `json:"tenants"`
}

// DataStore is the Schema for the datastores API.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster
// +kubebuilder:printcolumn:name="Driver",type="string",JSONPath=".spec.driver",description="Kamaji data store driver"
// +kubebuilder:printcolumn:name="Ready",type="boolean",JSONPath=".status.ready",description="Kamaji data store readiness status"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp",description="Age"
type DataStore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DataStoreSpec   `json:"spec,omitempty"`
	Status DataStoreStatus `json:"status,omitempty"`
}

// DataStoreList contains a list of DataStore.
//
// +kubebuilder:object:root=true
type DataStoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DataStore `json:"items"`
}

func init() {
	SchemeBuilder.Register(&DataStore{}, &DataStoreList{})
}
