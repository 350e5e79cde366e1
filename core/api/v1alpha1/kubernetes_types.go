package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// KubernetesSpec is the Kubernetes specification of the tenant control plane.
type KubernetesSpec struct {
	// Kubernetes Version for the tenant control plane, such as v1.37.2.
	// The schema accepts any string, as Kamaji's: the admission webhook refuses an empty or
	// unsupported one.
	Version string `json:"version"`
	// +optional
	Kubelet KubeletSpec `json:"kubelet"`
	// List of enabled Admission Controllers for the Tenant cluster.
	// Full reference available here: https://kubernetes.io/docs/reference/access-authn-authz/admission-controllers
	// +kubebuilder:default={CertificateApproval,CertificateSigning,CertificateSubjectRestriction,DefaultIngressClass,DefaultStorageClass,DefaultTolerationSeconds,LimitRanger,MutatingAdmissionWebhook,NamespaceLifecycle,PersistentVolumeClaimResize,Priority,ResourceQuota,RuntimeClass,ServiceAccount,StorageObjectInUseProtection,TaintNodesByCondition,ValidatingAdmissionWebhook}
	// +optional
	AdmissionControllers AdmissionControllers `json:"admissionControllers,omitempty"`
}

// AdmissionController is the name of a kube-apiserver admission plugin.
// +kubebuilder:validation:Enum=AlwaysAdmit;AlwaysDeny;AlwaysPullImages;CertificateApproval;CertificateSigning;CertificateSubjectRestriction;DefaultIngressClass;DefaultStorageClass;DefaultTolerationSeconds;DenyEscalatingExec;DenyExecOnPrivileged;DenyServiceExternalIPs;EventRateLimit;ExtendedResourceToleration;ImagePolicyWebhook;LimitPodHardAntiAffinityTopology;LimitRanger;MutatingAdmissionWebhook;NamespaceAutoProvision;NamespaceExists;NamespaceLifecycle;NodeRestriction;OwnerReferencesPermissionEnforcement;PersistentVolumeClaimResize;PersistentVolumeLabel;PodNodeSelector;PodSecurity;PodSecurityPolicy;PodTolerationRestriction;Priority;ResourceQuota;RuntimeClass;SecurityContextDeny;ServiceAccount;StorageObjectInUseProtection;TaintNodesByCondition;ValidatingAdmissionWebhook
type AdmissionController string

// AdmissionControllers is a list of admission plugins.
type AdmissionControllers []AdmissionController

// KubeletPreferredAddressType is a node address type the apiserver may use to reach kubelets.
// +kubebuilder:validation:Enum=Hostname;InternalIP;ExternalIP;InternalDNS;ExternalDNS
type KubeletPreferredAddressType string

// CGroupDriver is the kubelet cgroup driver.
// +kubebuilder:validation:Enum=systemd;cgroupfs
type CGroupDriver string

// KubeletSpec configures the kubelets that join the tenant.
type KubeletSpec struct {
	// Ordered list of the preferred NodeAddressTypes to use for kubelet connections.
	// Default to InternalIP, ExternalIP, Hostname.
	// +kubebuilder:default={"InternalIP","ExternalIP","Hostname"}
	// +kubebuilder:validation:MinItems=1
	// +optional
	PreferredAddressTypes []KubeletPreferredAddressType `json:"preferredAddressTypes,omitempty"`
	// CGroupFS defines the cgroup driver for Kubelet
	// https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/configure-cgroup-driver/
	// +optional
	CGroupFS CGroupDriver `json:"cgroupfs,omitempty"`
	// ConfigurationJSONPatches contains the RFC 6902 JSON patches to customise the kubeadm generated configuration,
	// useful to customise fields which are not exposed by the API.
	// +optional
	ConfigurationJSONPatches []JSONPatch `json:"configurationJSONPatches,omitempty"`
}

// JSONPatch is one RFC 6902 operation.
type JSONPatch struct {
	// +kubebuilder:validation:Enum=add;remove;replace;move;copy;test
	Op string `json:"op"`
	// +kubebuilder:validation:MinLength=1
	Path string `json:"path"`
	// +optional
	From string `json:"from,omitempty"`
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	Value *apiextensionsv1.JSON `json:"value,omitempty"`
}
