package v1alpha1

// NetworkProfileSpec defines the desired state of NetworkProfile.

type NetworkProfileSpec struct {
	// Address where API server of will be exposed.
	// In case of LoadBalancer Service, this can be empty in order to use the exposed IP provided by the cloud controller manager.
	// +optional
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="self == '' || isIP(self)",message="spec.networkProfile.address must be an IP address"
	Address string `json:"address,omitempty"`
	// AdvertiseAddress is the address kube-apiserver advertises to the tenant's members
	// (--advertise-address) when it differs from address.
	// +optional
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="self == '' || isIP(self)",message="spec.networkProfile.advertiseAddress must be an IP address"
	AdvertiseAddress string `json:"advertiseAddress,omitempty"`
	// AllowAddressAsExternalIP will include tenantControlPlane.Spec.NetworkProfile.Address in the section of
	// ExternalIPs of the Kubernetes Service (only ClusterIP or NodePort)
	// +optional
	AllowAddressAsExternalIP bool `json:"allowAddressAsExternalIP,omitempty"`
	// LoadBalancerSourceRanges restricts the IP ranges that can access
	// the LoadBalancer type Service. This field defines a list of IP
	// address ranges (in CIDR format) that are allowed to access the service.
	// If left empty, the service will allow traffic from all IP ranges (0.0.0.0/0).
	// This feature is useful for restricting access to API servers or services
	// to specific networks for security purposes.
	// Ensure the CIDRs are valid and the network settings are appropriate for your cloud provider.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=49
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="spec.networkProfile.loadBalancerSourceRanges must contain CIDRs, such as 192.168.0.0/24"
	LoadBalancerSourceRanges []string `json:"loadBalancerSourceRanges,omitempty"`
	// Specify the LoadBalancer class in case of multiple load balancer implementations.
	// Field supported only for Tenant Control Plane instances exposed using a LoadBalancer Service.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.networkProfile.loadBalancerClass is immutable"
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$')",message="spec.networkProfile.loadBalancerClass must be a label-style name with a prefix, such as example.com/internal-vip"
	LoadBalancerClass *string `json:"loadBalancerClass,omitempty"`
	// Port where API server of will be exposed
	// +kubebuilder:default=6443
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`
	// CertSANs sets extra Subject Alternative Names (SANs) for the API Server signing certificate.
	// Use this field to add additional hostnames when exposing the Tenant Control Plane with third solutions.
	// +optional
	CertSANs []string `json:"certSANs,omitempty"`
	// Kubernetes Service (deprecated: use serviceCidrs)
	// +kubebuilder:default="10.96.0.0/16"
	// +kubebuilder:validation:MaxLength=49
	// +kubebuilder:validation:XValidation:rule="self == '' || isCIDR(self)",message="spec.networkProfile.serviceCidr must be a CIDR, such as 10.96.0.0/16"
	// +optional
	ServiceCIDR string `json:"serviceCidr,omitempty"`
	// CIDR for Kubernetes Pods (deprecated: use podCidrs)
	// +kubebuilder:default="10.244.0.0/16"
	// +kubebuilder:validation:MaxLength=49
	// +kubebuilder:validation:XValidation:rule="self == '' || isCIDR(self)",message="spec.networkProfile.podCidr must be a CIDR, such as 10.244.0.0/16"
	// +optional
	PodCIDR string `json:"podCidr,omitempty"`
	// ServiceCIDRs are the Service ranges of the tenant, one per IP family; defaulted from serviceCidr.
	// +optional
	// +kubebuilder:validation:MaxItems=2
	// +kubebuilder:validation:items:MaxLength=49
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="spec.networkProfile.serviceCidrs must contain CIDRs, such as 10.96.0.0/16"
	ServiceCIDRs []string `json:"serviceCidrs,omitempty"`
	// PodCIDRs are the Pod ranges of the tenant, one per IP family; defaulted from podCidr.
	// +optional
	// +kubebuilder:validation:MaxItems=2
	// +kubebuilder:validation:items:MaxLength=49
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="spec.networkProfile.podCidrs must contain CIDRs, such as 10.244.0.0/16"
	PodCIDRs []string `json:"podCidrs,omitempty"`
	// The DNS Service for internal resolution, it must match the Service CIDR.
	// In case of an empty value, it is automatically computed as the tenth address of the first
	// Service CIDR, e.g.: Service CIDR 10.96.0.0/16, the resulting DNS Service IP will be 10.96.0.10
	// for IPv4, for IPv6 from the CIDR 2001:db8:abcd::/64 it will be 2001:db8:abcd::a.
	// The CoreDNS addon's Service takes the first address.
	// +optional
	// +kubebuilder:validation:MaxItems=4
	// +kubebuilder:validation:items:MaxLength=45
	// +kubebuilder:validation:items:XValidation:rule="isIP(self)",message="spec.networkProfile.dnsServiceIPs must contain IP addresses"
	DNSServiceIPs []string `json:"dnsServiceIPs,omitempty"`
	// The cluster domain of the tenant; immutable.
	// +kubebuilder:default="cluster.local"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.networkProfile.clusterDomain is immutable"
	// +optional
	ClusterDomain string `json:"clusterDomain,omitempty"`
}
