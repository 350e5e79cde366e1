package controlplane

import (
	"strings"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/netprofile"
)

// The network flags read spec.networkProfile through netprofile, which applies the CRD's
// defaults too, so that Build does not depend on the defaulting webhook having seen the object;
// these join its ranges as the flags take them.

func serviceCIDRs(np kamajiv1alpha1.NetworkProfileSpec) string {
	return strings.Join(netprofile.ServiceRanges(np), ",")
}

func podCIDRs(np kamajiv1alpha1.NetworkProfileSpec) string {
	return strings.Join(netprofile.PodRanges(np), ",")
}
