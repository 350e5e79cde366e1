package v1alpha1

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// ControlPlane defines how the Tenant Control Plane Kubernetes resources must be created in the
// Admin Cluster, such as the number of Pod replicas, the Service resource, or the Ingress.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.ingress) && has(self.gateway))",message="using both ingress and gateway is not supported"
type ControlPlane struct {
	// Defining the options for the deployed Tenant Control Plane as Deployment resource.
	// +optional
	Deployment DeploymentSpec `json:"deployment,omitempty"`
	// Defining the options for the Tenant Control Plane Service resource.
	Service ServiceSpec `json:"service"`
	// Defining the options for an Optional Ingress which will expose API Server of the Tenant Control Plane
	// +optional
	Ingress *IngressSpec `json:"ingress,omitempty"`
	// Defining the options for an Optional Gateway API TLSRoute which will expose the API Server of the Tenant Control Plane
	// +optional
	Gateway *GatewaySpec `json:"gateway,omitempty"`
}

// ServiceType is how the Tenant Control Plane is exposed.
// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
type ServiceType string

const (
	ServiceTypeClusterIP    ServiceType = "ClusterIP"
	ServiceTypeNodePort     ServiceType = "NodePort"
	ServiceTypeLoadBalancer ServiceType = "LoadBalancer"
)

// ServiceSpec defines the Tenant Control Plane Service.
//
// +kubebuilder:validation:XValidation:rule="!has(self.allocateLoadBalancerNodePorts) || self.serviceType == 'LoadBalancer'",message="allocateLoadBalancerNodePorts is supported only with LoadBalancer service type"
type ServiceSpec struct {
	// AdditionalMetadata defines which additional metadata, such as labels and annotations, must be attached to the created resource.
	// +optional
	AdditionalMetadata AdditionalMetadata `json:"additionalMetadata,omitempty"`
	// ServiceType allows specifying how to expose the Tenant Control Plane.
	ServiceType ServiceType `json:"serviceType"`
	// AllocateLoadBalancerNodePorts mirrors the Service field of the same name, for LoadBalancer services.
	// +optional
	AllocateLoadBalancerNodePorts *bool `json:"allocateLoadBalancerNodePorts,omitempty"`
	// AdditionalPorts are extra ports exposed by the Service, targeting the control plane pods.
	// +optional
	AdditionalPorts []AdditionalPort `json:"additionalPorts,omitempty"`
}

// AdditionalPort is an extra Service port.
type AdditionalPort struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
	// +kubebuilder:validation:Enum=TCP;UDP;SCTP
	// +kubebuilder:default=TCP
	Protocol corev1.Protocol `json:"protocol,omitempty"`
	// TargetPort on the pods; defaults to port.
	// +optional
	TargetPort int32 `json:"targetPort,omitempty"`
	// +optional
	AppProtocol *string `json:"appProtocol,omitempty"`
}

// IngressSpec defines the options for the ingress which will expose API Server of the Tenant Control Plane.
type IngressSpec struct {
	// AdditionalMetadata defines which additional metadata, such as labels and annotations, must be attached to the created resource.
	// +optional
	AdditionalMetadata AdditionalMetadata `json:"additionalMetadata,omitempty"`
	// +optional
	IngressClassName string `json:"ingressClassName,omitempty"`
	// Hostname is an optional field which will be used as Ingress's Host. If it is not defined,
	// Ingress's host will be "<tenant>.<namespace>.<domain>", where domain is specified under NetworkProfileSpec
	// +optional
	Hostname string `json:"hostname,omitempty"`
}

// GatewaySpec defines the Gateway API TLSRoute exposing the Tenant Control Plane.
type GatewaySpec struct {
	// AdditionalMetadata to add Labels and Annotations support.
	// +optional
	AdditionalMetadata AdditionalMetadata `json:"additionalMetadata,omitempty"`
	// Hostname is the host name to match, used by the TLSRoute.
	// +optional
	Hostname string `json:"hostname,omitempty"`
	// GatewayParentRefs is the class of the Gateway resource to use.
	// +optional
	GatewayParentRefs []GatewayParentReference `json:"parentRefs,omitempty"`
}

// GatewayParentReference identifies the Gateway a TLSRoute attaches to (gateway.networking.k8s.io ParentReference).
type GatewayParentReference struct {
	// +optional
	Group *string `json:"group,omitempty"`
	// +optional
	Kind *string `json:"kind,omitempty"`
	// +optional
	Namespace *string `json:"namespace,omitempty"`
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +optional
	SectionName *string `json:"sectionName,omitempty"`
	// +optional
	Port *int32 `json:"port,omitempty"`
}

// ControlPlaneComponentsResources sets resources per control plane container.
type ControlPlaneComponentsResources struct {
	// +optional
	APIServer *corev1.ResourceRequirements `json:"apiServer,omitempty"`
	// +optional
	ControllerManager *corev1.ResourceRequirements `json:"controllerManager,omitempty"`
	// +optional
	Scheduler *corev1.ResourceRequirements `json:"scheduler,omitempty"`
	// +optional
	Kine *corev1.ResourceRequirements `json:"kine,omitempty"`
}

// ExtraArgs are command line flags, as "--flag=value" strings; they override the core's own.
type ExtraArgs []string

// ControlPlaneExtraArgs sets extra flags per control plane container.
type ControlPlaneExtraArgs struct {
	// +optional
	APIServer ExtraArgs `json:"apiServer,omitempty"`
	// +optional
	ControllerManager ExtraArgs `json:"controllerManager,omitempty"`
	// +optional
	Scheduler ExtraArgs `json:"scheduler,omitempty"`
	// Available only if Kamaji is running using Kine as backing storage.
	// +optional
	Kine ExtraArgs `json:"kine,omitempty"`
}

// AdditionalVolumeMounts mounts extra volumes in each control plane container.
type AdditionalVolumeMounts struct {
	// +optional
	APIServer []corev1.VolumeMount `json:"apiServer,omitempty"`
	// +optional
	ControllerManager []corev1.VolumeMount `json:"controllerManager,omitempty"`
	// +optional
	Scheduler []corev1.VolumeMount `json:"scheduler,omitempty"`
}

// RegistrySettings names the images of the control plane containers: <registry>/<image>:<version><tagSuffix>.
type RegistrySettings struct {
	// +kubebuilder:default="registry.k8s.io"
	Registry string `json:"registry,omitempty"`
	// +kubebuilder:default="kube-apiserver"
	APIServerImage string `json:"apiServerImage,omitempty"`
	// +kubebuilder:default="kube-controller-manager"
	ControllerManagerImage string `json:"controllerManagerImage,omitempty"`
	// +kubebuilder:default="kube-scheduler"
	SchedulerImage string `json:"schedulerImage,omitempty"`
	// The tag to append to all the Control Plane container images.
	// Optional.
	// +optional
	TagSuffix string `json:"tagSuffix,omitempty"`
}

// ProbeSpec tunes the timings of a probe the core defines.
type ProbeSpec struct {
	// +optional
	// +kubebuilder:validation:Minimum=0
	InitialDelaySeconds *int32 `json:"initialDelaySeconds,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=1
	TimeoutSeconds *int32 `json:"timeoutSeconds,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=1
	PeriodSeconds *int32 `json:"periodSeconds,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=1
	SuccessThreshold *int32 `json:"successThreshold,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=1
	FailureThreshold *int32 `json:"failureThreshold,omitempty"`
}

// ControlPlaneProbes tunes the liveness, readiness and startup probes of the control plane containers.
// Each timing comes from, in order of precedence: the component's block (apiServer,
// controllerManager, scheduler), then the global one (liveness, readiness, startup), then the
// default: kubeadm's timings, except the startup probe, which polls every second from the start
// (failureThreshold 240, the same four minutes; kube-apiserver's asks /readyz), and the
// readiness probe, every 5 s rather than every second; they merge field by field.
type ControlPlaneProbes struct {
	// Liveness tunes the liveness probe of every component.
	// +optional
	Liveness *ProbeSpec `json:"liveness,omitempty"`
	// Readiness tunes the readiness probe of every component that has one (kube-apiserver).
	// +optional
	Readiness *ProbeSpec `json:"readiness,omitempty"`
	// StartupProbe tunes the startup probe of every component.
	// +optional
	StartupProbe *ProbeSpec `json:"startup,omitempty"`
	// APIServer overrides the global probe settings for kube-apiserver.
	// +optional
	APIServer *ComponentProbes `json:"apiServer,omitempty"`
	// ControllerManager overrides the global probe settings for kube-controller-manager.
	// +optional
	ControllerManager *ComponentProbes `json:"controllerManager,omitempty"`
	// Scheduler overrides the global probe settings for kube-scheduler.
	// +optional
	Scheduler *ComponentProbes `json:"scheduler,omitempty"`
}

// ComponentProbes tunes the probes of one control plane component; a field set here wins over
// the same field of the global probe settings.
type ComponentProbes struct {
	// +optional
	Liveness *ProbeSpec `json:"liveness,omitempty"`
	// Readiness applies to components that have a readiness probe (kube-apiserver).
	// +optional
	Readiness *ProbeSpec `json:"readiness,omitempty"`
	// +optional
	StartupProbe *ProbeSpec `json:"startup,omitempty"`
}

// ControlPlaneContainerSecurityContexts sets the security context of each control plane container.
type ControlPlaneContainerSecurityContexts struct {
	// +optional
	APIServer *corev1.SecurityContext `json:"apiServer,omitempty"`
	// +optional
	ControllerManager *corev1.SecurityContext `json:"controllerManager,omitempty"`
	// +optional
	Scheduler *corev1.SecurityContext `json:"scheduler,omitempty"`
}

// DeploymentSpec defines the Tenant Control Plane Deployment.
type DeploymentSpec struct {
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=0
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
	// NodeSelector is a selector which must be true for the pod to fit on a node.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// RuntimeClassName refers to a RuntimeClass object in the node.k8s.io group.
	// +optional
	RuntimeClassName string `json:"runtimeClassName,omitempty"`
	// Strategy describes how to replace existing pods with new ones for the given Tenant Control Plane.
	// Default value is set to Rolling Update, with a blue/green strategy.
	// +kubebuilder:default={type:"RollingUpdate",rollingUpdate:{maxUnavailable:0,maxSurge:"100%"}}
	// +optional
	Strategy appsv1.DeploymentStrategy `json:"strategy,omitempty"`
	// If specified, the Tenant Control Plane pod's tolerations.
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// If specified, the Tenant Control Plane pod's scheduling constraints.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// TopologySpreadConstraints describes how the Tenant Control Plane pods ought to spread across topology domains.
	// +optional
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	// Resources defines the amount of memory and CPU to allocate to each component of the Control Plane.
	// A component given a memory limit also runs with GOMEMLIMIT set to 90% of it, so that its Go
	// runtime collects harder near the limit rather than being killed at it.
	// +optional
	Resources *ControlPlaneComponentsResources `json:"resources,omitempty"`
	// ExtraArgs allows adding additional arguments to the Control Plane components,
	// such as kube-apiserver, controller-manager, and scheduler.
	// +optional
	ExtraArgs *ControlPlaneExtraArgs `json:"extraArgs,omitempty"`
	// AdditionalMetadata defines which additional metadata, such as labels and annotations, must be attached to the created resource.
	// +optional
	AdditionalMetadata AdditionalMetadata `json:"additionalMetadata,omitempty"`
	// PodAdditionalMetadata defines which additional metadata, such as labels and annotations, must be attached to the Pods.
	// +optional
	PodAdditionalMetadata AdditionalMetadata `json:"podAdditionalMetadata,omitempty"`
	// AdditionalInitContainers allows adding additional init containers to the Control Plane deployment.
	// +optional
	AdditionalInitContainers []corev1.Container `json:"additionalInitContainers,omitempty"`
	// AdditionalContainers allows adding additional containers to the Control Plane deployment.
	// +optional
	AdditionalContainers []corev1.Container `json:"additionalContainers,omitempty"`
	// AdditionalVolumes allows to add additional volumes to the Control Plane deployment.
	// +optional
	AdditionalVolumes []corev1.Volume `json:"additionalVolumes,omitempty"`
	// AdditionalVolumeMounts allows to mount an additional volume into each component of the Control Plane.
	// +optional
	AdditionalVolumeMounts *AdditionalVolumeMounts `json:"additionalVolumeMounts,omitempty"`
	// ServiceAccountName allows to specify the service account to be mounted to the pods of the Control plane deployment
	// +kubebuilder:default="default"
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// RegistrySettings allows to override the default images for the given Tenant Control Plane instance.
	// It could be used to point to a different container registry rather than the public one.
	// +kubebuilder:default={registry:"registry.k8s.io",apiServerImage:"kube-apiserver",controllerManagerImage:"kube-controller-manager",schedulerImage:"kube-scheduler"}
	// +optional
	RegistrySettings RegistrySettings `json:"registrySettings,omitempty"`
	// Probes tunes the timings of the control plane containers' probes.
	// +optional
	Probes *ControlPlaneProbes `json:"probes,omitempty"`
	// PodSecurityContext is applied to the control plane pods.
	// +optional
	PodSecurityContext *corev1.PodSecurityContext `json:"podSecurityContext,omitempty"`
	// SecurityContext is applied to each control plane container.
	// +optional
	SecurityContext *corev1.SecurityContext `json:"securityContext,omitempty"`
	// ContainerSecurityContexts sets the security context of kube-apiserver, kube-controller-manager
	// and kube-scheduler, each on its own; for that container it replaces securityContext.
	// +optional
	ContainerSecurityContexts *ControlPlaneContainerSecurityContexts `json:"containerSecurityContexts,omitempty"`
	// AutomountServiceAccountToken sets automountServiceAccountToken on the control plane pods;
	// when unset, the ServiceAccount's setting applies (Kubernetes' default: mounted).
	// +optional
	AutomountServiceAccountToken *bool `json:"automountServiceAccountToken,omitempty"`
}
