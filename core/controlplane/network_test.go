package controlplane

import (
	"testing"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func TestNetworkDefaults(t *testing.T) {
	var empty kamajiv1alpha1.NetworkProfileSpec
	if got := securePort(empty); got != 6443 {
		t.Errorf("port = %d", got)
	}
	if got := serviceCIDRs(empty); got != "10.96.0.0/16" {
		t.Errorf("service CIDRs = %q", got)
	}
	if got := podCIDRs(empty); got != "10.244.0.0/16" {
		t.Errorf("pod CIDRs = %q", got)
	}
	if got := clusterDomain(empty); got != "cluster.local" {
		t.Errorf("cluster domain = %q", got)
	}
}
