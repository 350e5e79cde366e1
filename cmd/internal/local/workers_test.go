package local

import (
	"strings"
	"testing"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// A worker must reach the tenant apiserver's pod address, which it would route to its own pods
// if the tenant's pod range covered the admin cluster's.
func TestWorkerNetworkFits(t *testing.T) {
	p := &Plane{cfg: DefaultConfig()}
	for _, c := range []struct {
		podCIDR  string
		podCIDRs []string
		err      string
	}{
		{podCIDR: TenantPodCIDR},
		{podCIDR: "10.36.0.0/16", podCIDRs: []string{"10.36.0.0/16", "fd00::/48"}},
		{podCIDR: "10.244.0.0/16", err: "spec.networkProfile.podCidr 10.244.0.0/16 overlaps the admin cluster's pods (10.244.0.0/16)"},
		{podCIDR: "10.0.0.0/8", err: "overlaps"},
		{podCIDR: "10.244.7.0/24", err: "overlaps"},
		{podCIDRs: []string{"10.36.0.0/16", "10.244.0.0/20"}, err: "10.244.0.0/20 overlaps"},
	} {
		tcp := SampleTCP("t", "default")
		tcp.Spec.NetworkProfile = kamajiv1alpha1.NetworkProfileSpec{PodCIDR: c.podCIDR, PodCIDRs: c.podCIDRs}
		err := p.workerNetworkFits(tcp)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s %v: %v, want %q", c.podCIDR, c.podCIDRs, err, c.err)
		}
	}
}

func TestWorkersFlagBounds(t *testing.T) {
	for _, n := range []int{-1, 201} {
		cfg := DefaultConfig()
		cfg.Workers = n
		if err := cfg.normalize(); err == nil || !strings.Contains(err.Error(), "--workers") {
			t.Errorf("--workers %d: %v", n, err)
		}
	}
}
