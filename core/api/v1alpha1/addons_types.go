package v1alpha1

import corev1 "k8s.io/api/core/v1"

// AddonsSpec selects the core addons the tenant runs; an absent addon is not installed.
type AddonsSpec struct {
	// Enables the DNS addon in the Tenant Cluster.
	// The registry and the tag are configurable, the image is hard-coded to `coredns`.
	// +optional
	CoreDNS *AddonSpec `json:"coreDNS,omitempty"`
	// Enables the Konnectivity addon in the Tenant Cluster, required if the worker nodes are in a different network.
	// +optional
	Konnectivity *KonnectivitySpec `json:"konnectivity,omitempty"`
	// Enables the kube-proxy addon in the Tenant Cluster.
	// The registry and the tag are configurable, the image is hard-coded to `kube-proxy`.
	// +optional
	KubeProxy *AddonSpec `json:"kubeProxy,omitempty"`
}

// AddonSpec overrides an addon's image.
type AddonSpec struct {
	// ImageRepository sets the container registry to pull images from.
	// if not set, the default ImageRepository will be used instead.
	// +optional
	ImageRepository string `json:"imageRepository,omitempty"`
	// ImageTag allows to specify a tag for the image.
	// In case this value is set, kubeadm does not change automatically the version of the above components during upgrades.
	// +optional
	ImageTag string `json:"imageTag,omitempty"`
}

// KonnectivitySpec configures the Konnectivity server sidecar and its agents.
type KonnectivitySpec struct {
	// +kubebuilder:default={version:"v0.34.0",image:"registry.k8s.io/kas-network-proxy/proxy-server",port:8132}
	// +optional
	KonnectivityServerSpec KonnectivityServerSpec `json:"server,omitempty"`
	// +kubebuilder:default={version:"v0.34.0",image:"registry.k8s.io/kas-network-proxy/proxy-agent",mode:"DaemonSet"}
	// +optional
	KonnectivityAgentSpec KonnectivityAgentSpec `json:"agent,omitempty"`
}

// KonnectivityServerSpec configures the server sidecar of the control plane pod.
type KonnectivityServerSpec struct {
	// The port which Konnectivity server is listening to.
	// +kubebuilder:default=8132
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`
	// Container image version of the Konnectivity server.
	// +kubebuilder:default="v0.34.0"
	// +optional
	Version string `json:"version,omitempty"`
	// Container image used by the Konnectivity server.
	// +kubebuilder:default="registry.k8s.io/kas-network-proxy/proxy-server"
	// +optional
	Image string `json:"image,omitempty"`
	// Resources define the amount of CPU and memory to allocate to the Konnectivity server.
	// With a memory limit, the server (a Go program) runs with GOMEMLIMIT at 90% of it, set by
	// the konnectivity addon plugin as the core sets it for the control-plane components.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	// +optional
	ExtraArgs ExtraArgs `json:"extraArgs,omitempty"`
	// SecurityContext is the security context of the konnectivity-server container.
	// +optional
	SecurityContext *corev1.SecurityContext `json:"securityContext,omitempty"`
}

// KonnectivityAgentMode is how the agents run in the tenant.
// +kubebuilder:validation:Enum=DaemonSet;Deployment
type KonnectivityAgentMode string

const (
	KonnectivityAgentModeDaemonSet  KonnectivityAgentMode = "DaemonSet"
	KonnectivityAgentModeDeployment KonnectivityAgentMode = "Deployment"
)

// KonnectivityAgentSpec configures the agents that run in the tenant cluster.
//
// +kubebuilder:validation:XValidation:rule="!(self.mode == 'DaemonSet' && has(self.replicas) && self.replicas != 0) && !(self.mode == 'Deployment' && (!has(self.replicas) || self.replicas == 0))",message="replicas must be 0 when mode is DaemonSet, and greater than 0 when mode is Deployment",fieldPath=".replicas"
type KonnectivityAgentSpec struct {
	// AgentImage defines the container image for Konnectivity's agent.
	// +kubebuilder:default="registry.k8s.io/kas-network-proxy/proxy-agent"
	// +optional
	Image string `json:"image,omitempty"`
	// Version for Konnectivity agent.
	// +kubebuilder:default="v0.34.0"
	// +optional
	Version string `json:"version,omitempty"`
	// Tolerations for the deployed agent.
	// Can be customized to start the konnectivity-agent even if the nodes are not ready or tainted.
	// +kubebuilder:default={{key: "CriticalAddonsOnly", operator: "Exists"}}
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// HostNetwork enables the konnectivity agent to use the Host network namespace.
	// By enabling this mode, the Agent doesn't need to wait for the CNI initialisation,
	// enabling a sort of out-of-band access to nodes for troubleshooting scenarios,
	// or when the agent needs direct access to the host network.
	// +kubebuilder:default=false
	// +optional
	HostNetwork bool `json:"hostNetwork,omitempty"`
	// +optional
	ExtraArgs ExtraArgs `json:"extraArgs,omitempty"`
	// Mode allows specifying how the Konnectivity agents should be deployed to the tenant cluster,
	// either as a DaemonSet or as a Deployment.
	// +kubebuilder:default="DaemonSet"
	// +optional
	Mode KonnectivityAgentMode `json:"mode,omitempty"`
	// Replicas defines the number of replicas when Mode is Deployment.
	// Must be 0 if Mode is DaemonSet.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
}
