package v1alpha1

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KubernetesVersionStatus is the coarse state of a Tenant Control Plane, kept for Kamaji compatibility.
// The conditions carry the detail.
// +kubebuilder:validation:Enum=Provisioning;CertificateAuthorityRotating;Upgrading;Migrating;Ready;NotReady;Sleeping;WriteLimited;Unknown
type KubernetesVersionStatus string

const (
	VersionProvisioning                 KubernetesVersionStatus = "Provisioning"
	VersionCertificateAuthorityRotating KubernetesVersionStatus = "CertificateAuthorityRotating"
	VersionUpgrading                    KubernetesVersionStatus = "Upgrading"
	VersionMigrating                    KubernetesVersionStatus = "Migrating"
	VersionReady                        KubernetesVersionStatus = "Ready"
	VersionNotReady                     KubernetesVersionStatus = "NotReady"
	VersionSleeping                     KubernetesVersionStatus = "Sleeping"
	VersionWriteLimited                 KubernetesVersionStatus = "WriteLimited"
	VersionUnknown                      KubernetesVersionStatus = "Unknown"
)

// Condition types set on a TenantControlPlane.
const (
	ConditionReady                 = "Ready"
	ConditionDataStoreReady        = "DataStoreReady"
	ConditionCertificatesReady     = "CertificatesReady"
	ConditionKubeconfigsReady      = "KubeconfigsReady"
	ConditionServiceReady          = "ServiceReady"
	ConditionControlPlaneAvailable = "ControlPlaneAvailable"
	ConditionTenantConfigured      = "TenantConfigured"
	ConditionAddonsReady           = "AddonsReady"
	// ConditionSleeping, on a TCP with the sleep-after annotation, is True while it sleeps
	// (reason Idle) and False otherwise (Awake, Waking, or SleepUnavailable with the cause).
	ConditionSleeping = "Sleeping"
	// ConditionKubernetesVersionTested is False for a version outside the window this release
	// is tested with (accepted, as in Kamaji, with an admission warning).
	ConditionKubernetesVersionTested = "KubernetesVersionTested"
)

// StorageStatus is where the tenant's data lives.
type StorageStatus struct {
	Driver        string `json:"driver,omitempty"`
	DataStoreName string `json:"dataStoreName,omitempty"`
	// +optional
	Config SecretStatus `json:"config,omitempty"`
	// +optional
	Setup DataStoreSetupStatus `json:"setup,omitempty"`
	// +optional
	Certificate DataStoreCertificateStatus `json:"certificate,omitempty"`
	// Overrides records the tenant's slice on each DataStore of spec.dataStoreOverrides. Like
	// dataStoreName and setup, an entry is written before the slice is first provisioned, so
	// deletion deprovisions every DataStore the tenant may have touched.
	// +optional
	// +listType=map
	// +listMapKey=dataStoreName
	Overrides []StorageOverrideStatus `json:"overrides,omitempty"`
	// Usage is what the tenant stores on its DataStore, as the driver last reported it (drivers
	// with the USAGE capability; counted about every 5 minutes by the DataStore controller, every
	// hour while the tenant sleeps, not on every reconcile).
	// +optional
	Usage *StorageUsage `json:"usage,omitempty"`
	// Migration is the move of the tenant's data to the DataStore spec.dataStore names, while
	// it runs, and after it failed (until spec.dataStore changes again).
	// +optional
	Migration *StorageMigrationStatus `json:"migration,omitempty"`
}

// MigrationPhase is where a datastore migration stands.
// +kubebuilder:validation:Enum=Provisioning;Freezing;Copying;Switching;Unfreezing;CleaningUp;RollingBack;Failed
type MigrationPhase string

const (
	MigrationProvisioning MigrationPhase = "Provisioning" // the target slice is being provisioned
	MigrationFreezing     MigrationPhase = "Freezing"     // writes are being frozen in the tenant
	MigrationCopying      MigrationPhase = "Copying"      // keys are streamed, then verified
	MigrationSwitching    MigrationPhase = "Switching"    // the control plane rolls onto the target
	MigrationUnfreezing   MigrationPhase = "Unfreezing"   // writes are being allowed again
	MigrationCleaningUp   MigrationPhase = "CleaningUp"   // the source slice is deprovisioned
	MigrationRollingBack  MigrationPhase = "RollingBack"  // back to the source, target removed
	MigrationFailed       MigrationPhase = "Failed"       // rolled back; the tenant runs on the source
)

// StorageMigrationStatus records a datastore migration, so that a manager restarted at any
// phase resumes it or rolls it back.
type StorageMigrationStatus struct {
	// Source is the DataStore the data comes from; Target the one it goes to.
	Source string `json:"source"`
	Target string `json:"target"`
	// TargetDriver is the target DataStore's driver, recorded just before anything is
	// provisioned there (empty: the target was refused first and holds nothing of the tenant).
	// +optional
	TargetDriver string         `json:"targetDriver,omitempty"`
	Phase        MigrationPhase `json:"phase"`
	// StartTime is when the migration began; Deadline when it is rolled back if not switched.
	StartTime metav1.Time `json:"startTime"`
	Deadline  metav1.Time `json:"deadline"`
	// FreezeStart is when the write freeze was put in place in the tenant (and so must be
	// lifted, whatever happens next).
	// +optional
	FreezeStart *metav1.Time `json:"freezeStart,omitempty"`
	// FreezeEnd is when the tenant apiserver stopped enforcing the freeze (writes pass again).
	// +optional
	FreezeEnd *metav1.Time `json:"freezeEnd,omitempty"`
	// Copied describes what was copied and verified: keys, bytes and checksum.
	// +optional
	Copied string `json:"copied,omitempty"`
	// Message says why the migration failed or is rolling back.
	// +optional
	Message string `json:"message,omitempty"`
}

// StorageOverrideStatus is the tenant's slice on an override DataStore.
type StorageOverrideStatus struct {
	DataStoreName string `json:"dataStoreName"`
	Schema        string `json:"schema,omitempty"`
	User          string `json:"user,omitempty"`
}

// StorageUsage is an amount of stored data.
type StorageUsage struct {
	// Bytes of keys and values as the backend counts them; absent when the driver does not say.
	// +optional
	Bytes *int64 `json:"bytes,omitempty"`
	// Keys stored; absent when the driver does not say.
	// +optional
	Keys *int64 `json:"keys,omitempty"`
	// LastUpdate is when the driver reported these figures. A count that finds the same ones
	// is not written until they are an hour old (so at rest it moves hourly, not at each count).
	// +optional
	LastUpdate metav1.Time `json:"lastUpdate,omitempty"`
}

// DataStoreSetupStatus records the tenant's slice of the DataStore.
type DataStoreSetupStatus struct {
	Schema     string      `json:"schema,omitempty"`
	User       string      `json:"user,omitempty"`
	LastUpdate metav1.Time `json:"lastUpdate,omitempty"`
	Checksum   string      `json:"checksum,omitempty"`
}

// DataStoreCertificateStatus records the datastore client certificate Secret.
type DataStoreCertificateStatus struct {
	SecretName string      `json:"secretName,omitempty"`
	Checksum   string      `json:"checksum,omitempty"`
	LastUpdate metav1.Time `json:"lastUpdate,omitempty"`
}

// SecretStatus names a Secret the core wrote and the checksum of its content.
type SecretStatus struct {
	SecretName string      `json:"secretName,omitempty"`
	Checksum   string      `json:"checksum,omitempty"`
	LastUpdate metav1.Time `json:"lastUpdate,omitempty"`
}

// CertificatePrivateKeyPairStatus names a certificate Secret.
type CertificatePrivateKeyPairStatus struct {
	SecretName string      `json:"secretName,omitempty"`
	Checksum   string      `json:"checksum,omitempty"`
	LastUpdate metav1.Time `json:"lastUpdate,omitempty"`
}

// PublicKeyPrivateKeyPairStatus names a key pair Secret.
type PublicKeyPrivateKeyPairStatus struct {
	SecretName string      `json:"secretName,omitempty"`
	Checksum   string      `json:"checksum,omitempty"`
	LastUpdate metav1.Time `json:"lastUpdate,omitempty"`
}

// ETCDCertificatesStatus names the datastore client certificate Secrets.
type ETCDCertificatesStatus struct {
	APIServer CertificatePrivateKeyPairStatus `json:"apiServer,omitempty"`
	CA        CertificatePrivateKeyPairStatus `json:"ca,omitempty"`
}

// CertificatesStatus names the Secrets holding the tenant's PKI.
type CertificatesStatus struct {
	CA                     CertificatePrivateKeyPairStatus `json:"ca,omitempty"`
	APIServer              CertificatePrivateKeyPairStatus `json:"apiServer,omitempty"`
	APIServerKubeletClient CertificatePrivateKeyPairStatus `json:"apiServerKubeletClient,omitempty"`
	FrontProxyCA           CertificatePrivateKeyPairStatus `json:"frontProxyCA,omitempty"`
	FrontProxyClient       CertificatePrivateKeyPairStatus `json:"frontProxyClient,omitempty"`
	SA                     PublicKeyPrivateKeyPairStatus   `json:"sa,omitempty"`
	// +optional
	ETCD *ETCDCertificatesStatus `json:"etcd,omitempty"`
}

// KubeconfigStatus names a kubeconfig Secret.
type KubeconfigStatus struct {
	SecretName string      `json:"secretName,omitempty"`
	Checksum   string      `json:"checksum,omitempty"`
	LastUpdate metav1.Time `json:"lastUpdate,omitempty"`
}

// KubeconfigsStatus names the kubeconfig Secrets.
type KubeconfigsStatus struct {
	Admin             KubeconfigStatus `json:"admin,omitempty"`
	ControllerManager KubeconfigStatus `json:"controllerManager,omitempty"`
	Scheduler         KubeconfigStatus `json:"scheduler,omitempty"`
}

// KubeadmConfigStatus records the kubeadm configuration ConfigMap.
type KubeadmConfigStatus struct {
	ConfigmapName string      `json:"configmapName,omitempty"`
	Checksum      string      `json:"checksum,omitempty"`
	LastUpdate    metav1.Time `json:"lastUpdate,omitempty"`
}

// KubeadmPhaseStatus records one kubeadm phase applied to the tenant.
type KubeadmPhaseStatus struct {
	Checksum   string      `json:"checksum,omitempty"`
	LastUpdate metav1.Time `json:"lastUpdate,omitempty"`
}

// KubeadmPhasesStatus records the kubeadm phases applied to the tenant.
type KubeadmPhasesStatus struct {
	BootstrapToken KubeadmPhaseStatus `json:"bootstrapToken,omitempty"`
}

// AddonStatus records an addon applied to the tenant.
type AddonStatus struct {
	Enabled    bool        `json:"enabled"`
	Checksum   string      `json:"checksum,omitempty"`
	LastUpdate metav1.Time `json:"lastUpdate,omitempty"`
}

// KonnectivityStatus records the konnectivity addon.
type KonnectivityStatus struct {
	Enabled bool `json:"enabled"`
	// +optional
	ConfigMap KonnectivityConfigMap `json:"configMap,omitempty"`
	// +optional
	Certificate CertificatePrivateKeyPairStatus `json:"certificate,omitempty"`
	// +optional
	Kubeconfig KubeconfigStatus `json:"kubeconfig,omitempty"`
	// ServiceAccount the agents run as, in the tenant cluster.
	// +optional
	ServiceAccount ExternalKubernetesObjectStatus `json:"sa,omitempty"`
	// ClusterRoleBinding that lets the konnectivity server review the agents' tokens, in the tenant cluster.
	// +optional
	ClusterRoleBinding ExternalKubernetesObjectStatus `json:"clusterrolebinding,omitempty"`
	// +optional
	Agent KonnectivityAgentStatus `json:"agent,omitempty"`
	// Service the agents dial: the Tenant Control Plane Service, on the konnectivity port.
	// +optional
	Service *KubernetesServiceStatus `json:"service,omitempty"`
	// Gateway is the Gateway API route of the konnectivity server, when the Tenant Control Plane
	// is exposed through a Gateway.
	// +optional
	Gateway *KubernetesGatewayStatus `json:"gateway,omitempty"`
}

// ExternalKubernetesObjectStatus names an object the core keeps in the tenant cluster.
type ExternalKubernetesObjectStatus struct {
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Last time the object was updated.
	// +optional
	LastUpdate metav1.Time `json:"lastUpdate,omitempty"`
}

// KonnectivityConfigMap is the egress selector configuration ConfigMap.
type KonnectivityConfigMap struct {
	Name     string `json:"name,omitempty"`
	Checksum string `json:"checksum,omitempty"`
}

// KonnectivityAgentStatus records the konnectivity agent workload.
type KonnectivityAgentStatus struct {
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// Checksum of the konnectivity objects applied in the tenant cluster.
	// +optional
	Checksum   string      `json:"checksum,omitempty"`
	LastUpdate metav1.Time `json:"lastUpdate,omitempty"`
	// Mode is how the agents run: DaemonSet or Deployment.
	// +optional
	Mode KonnectivityAgentMode `json:"mode,omitempty"`
}

// AddonsStatus records the addons applied to the tenant.
type AddonsStatus struct {
	// +optional
	CoreDNS AddonStatus `json:"coreDNS,omitempty"`
	// +optional
	KubeProxy AddonStatus `json:"kubeProxy,omitempty"`
	// +optional
	Konnectivity KonnectivityStatus `json:"konnectivity,omitempty"`
}

// KubernetesVersion is the installed version and the coarse status.
type KubernetesVersion struct {
	// Version is the running Kubernetes version of the Tenant Control Plane.
	// +optional
	Version string `json:"version,omitempty"`
	// +kubebuilder:default=Provisioning
	// +optional
	Status *KubernetesVersionStatus `json:"status,omitempty"`
}

// KubernetesDeploymentStatus mirrors the control plane Deployment's status.
type KubernetesDeploymentStatus struct {
	// The generation observed by the deployment controller.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Total number of non-terminated pods targeted by this deployment (their labels match the selector).
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// Total number of non-terminated pods targeted by this deployment that have the desired template spec.
	// +optional
	UpdatedReplicas int32 `json:"updatedReplicas,omitempty"`
	// Total number of ready pods targeted by this deployment.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// Total number of available pods targeted by this deployment.
	// +optional
	AvailableReplicas int32 `json:"availableReplicas,omitempty"`
	// Total number of unavailable pods targeted by this deployment.
	// +optional
	UnavailableReplicas int32 `json:"unavailableReplicas,omitempty"`
	// Represents the latest available observations of the deployment's current state.
	// +optional
	Conditions []appsv1.DeploymentCondition `json:"conditions,omitempty"`
	// Selector is the label selector used to group the Tenant Control Plane Pods used by the scale subresource.
	Selector string `json:"selector"`
	// The name of the Deployment for the given cluster.
	Name string `json:"name"`
	// The namespace which the Deployment for the given cluster is deployed.
	Namespace string `json:"namespace"`
	// Last time when deployment was updated
	// +optional
	LastUpdate metav1.Time `json:"lastUpdate,omitempty"`
}

// KubernetesServiceStatus mirrors the control plane Service.
type KubernetesServiceStatus struct {
	corev1.ServiceStatus `json:",inline"`
	// The name of the Service for the given cluster.
	Name string `json:"name"`
	// The namespace which the Service for the given cluster is deployed.
	Namespace string `json:"namespace"`
	// The port where the service is running
	Port int32 `json:"port"`
}

// KubernetesIngressStatus mirrors the control plane Ingress.
type KubernetesIngressStatus struct {
	networkingv1.IngressStatus `json:",inline"`
	Name                       string `json:"name"`
	Namespace                  string `json:"namespace"`
}

// KubernetesGatewayStatus records the control plane TLSRoute: the route's own status as the
// Gateway controllers report it (parents), the route, and where the Gateways expose it.
type KubernetesGatewayStatus struct {
	// Parents are the route's status.parents, one per Gateway (listener) it attaches to.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Parents []RouteParentStatus `json:"parents,omitempty"`
	// RouteRef names the route created for this tenant.
	// +optional
	RouteRef corev1.LocalObjectReference `json:"routeRef,omitempty"`
	// AccessPoints are the addresses the route can be reached at: each address of each Gateway
	// that accepted it, on the listener's port.
	// +optional
	AccessPoints []GatewayAccessPoint `json:"accessPoints,omitempty"`
	// Name of the route (also in routeRef).
	// +optional
	Name string `json:"name,omitempty"`
	// Namespace of the route.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// RouteParentStatus is a Gateway API RouteParentStatus: how one parent treats the route.
type RouteParentStatus struct {
	// ParentRef is the parent (usually a Gateway) this status is about.
	ParentRef GatewayParentReference `json:"parentRef"`
	// ControllerName is the controller that wrote this status.
	ControllerName string `json:"controllerName"`
	// Conditions such as Accepted and ResolvedRefs.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// GatewayAccessPoint is one address a Gateway exposes the tenant at.
type GatewayAccessPoint struct {
	// Type of the address (Gateway API AddressType: IPAddress, Hostname, ...).
	Type string `json:"type"`
	// Value of the address.
	Value string `json:"value"`
	// Port of the Gateway listener.
	Port int32 `json:"port"`
	// URLs that reach the tenant's API server through this address.
	// +optional
	URLs []string `json:"urls,omitempty"`
}

// KubernetesStatus groups the admin cluster objects of the Tenant Control Plane.
type KubernetesStatus struct {
	// +optional
	Version KubernetesVersion `json:"version,omitempty"`
	// +optional
	Deployment KubernetesDeploymentStatus `json:"deployment,omitempty"`
	// +optional
	Service KubernetesServiceStatus `json:"service,omitempty"`
	// +optional
	Ingress *KubernetesIngressStatus `json:"ingress,omitempty"`
	// +optional
	Gateway *KubernetesGatewayStatus `json:"gateway,omitempty"`
}

// TenantControlPlaneStatus defines the observed state of TenantControlPlane.
type TenantControlPlaneStatus struct {
	// Storage Status contains information about Kubernetes storage system
	// +optional
	Storage StorageStatus `json:"storage,omitempty"`
	// Certificates contains information about the different certificates
	// that are necessary to run a kubernetes control plane
	// +optional
	Certificates CertificatesStatus `json:"certificates,omitempty"`
	// KubeConfig contains information about the kubenconfigs that control plane pieces need
	// +optional
	KubeConfig KubeconfigsStatus `json:"kubeconfig,omitempty"`
	// Kubernetes contains information about the reconciliation of the required Kubernetes resources deployed in the admin cluster
	// +optional
	Kubernetes KubernetesStatus `json:"kubernetesResources,omitempty"`
	// KubeadmConfig contains the status of the configuration required by kubeadm
	// +optional
	KubeadmConfig KubeadmConfigStatus `json:"kubeadmconfig,omitempty"`
	// KubeadmPhase contains the status of the kubeadm phases action
	// +optional
	KubeadmPhase KubeadmPhasesStatus `json:"kubeadmPhase,omitempty"`
	// ControlPlaneEndpoint contains the status of the kubernetes control plane
	// +optional
	ControlPlaneEndpoint string `json:"controlPlaneEndpoint,omitempty"`
	// Addons contains the status of the different Addons
	// +optional
	Addons AddonsStatus `json:"addons,omitempty"`
	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, DataStoreReady, CertificatesReady, KubeconfigsReady, ServiceReady,
	// ControlPlaneAvailable, TenantConfigured, AddonsReady.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
