package controlplane

import (
	"strings"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// CRD defaults of spec.networkProfile, applied here too so that Build does not depend on the
// defaulting webhook having seen the object.
const (
	defaultPort          int32 = 6443
	defaultServiceCIDR         = "10.96.0.0/16"
	defaultPodCIDR             = "10.244.0.0/16"
	defaultClusterDomain       = "cluster.local"
)

func securePort(np kamajiv1alpha1.NetworkProfileSpec) int32 {
	if np.Port != 0 {
		return np.Port
	}
	return defaultPort
}

// serviceCIDRs and podCIDRs prefer the plural (dual-stack) lists over the deprecated fields.
func serviceCIDRs(np kamajiv1alpha1.NetworkProfileSpec) string {
	return cidrs(np.ServiceCIDRs, np.ServiceCIDR, defaultServiceCIDR)
}

func podCIDRs(np kamajiv1alpha1.NetworkProfileSpec) string {
	return cidrs(np.PodCIDRs, np.PodCIDR, defaultPodCIDR)
}

func cidrs(list []string, single, def string) string {
	if len(list) > 0 {
		return strings.Join(list, ",")
	}
	return or(single, def)
}

func clusterDomain(np kamajiv1alpha1.NetworkProfileSpec) string {
	return or(np.ClusterDomain, defaultClusterDomain)
}
