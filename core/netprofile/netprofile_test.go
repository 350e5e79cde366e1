package netprofile

import (
	"slices"
	"testing"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func TestNthAddress(t *testing.T) {
	for cidr, want := range map[string]string{
		"10.96.0.0/16":       "10.96.0.10",
		"10.96.0.7/16":       "10.96.0.10",
		"2001:db8:abcd::/64": "2001:db8:abcd::a",
	} {
		got, err := NthAddress(cidr, 10)
		if err != nil || got.String() != want {
			t.Errorf("NthAddress(%s) = %v, %v; want %s", cidr, got, err, want)
		}
	}
	if _, err := NthAddress("10.0.0.0/29", 10); err == nil {
		t.Error("a /29 has no 10th address: want an error")
	}
}

func TestRanges(t *testing.T) {
	for _, c := range []struct {
		np             kamajiv1alpha1.NetworkProfileSpec
		services, pods []string
	}{
		{kamajiv1alpha1.NetworkProfileSpec{}, []string{"10.96.0.0/16"}, []string{"10.244.0.0/16"}},
		{kamajiv1alpha1.NetworkProfileSpec{ServiceCIDR: "10.32.0.0/12", PodCIDR: "10.1.0.0/16"}, []string{"10.32.0.0/12"}, []string{"10.1.0.0/16"}},
		{kamajiv1alpha1.NetworkProfileSpec{
			ServiceCIDR: "10.32.0.0/12", ServiceCIDRs: []string{"10.33.0.0/16", "fd00:10:96::/112"},
			PodCIDR: "10.1.0.0/16", PodCIDRs: []string{"10.2.0.0/16", "fd00:10:244::/56"},
		}, []string{"10.33.0.0/16", "fd00:10:96::/112"}, []string{"10.2.0.0/16", "fd00:10:244::/56"}},
	} {
		if got := ServiceRanges(c.np); !slices.Equal(got, c.services) {
			t.Errorf("ServiceRanges(%+v) = %v, want %v", c.np, got, c.services)
		}
		if got := PodRanges(c.np); !slices.Equal(got, c.pods) {
			t.Errorf("PodRanges(%+v) = %v, want %v", c.np, got, c.pods)
		}
	}
}

// The cluster DNS address every consumer derives must be the one the CoreDNS addon gives its
// Service: the first Service range's tenth address, never one per IP family.
func TestClusterDNS(t *testing.T) {
	for _, c := range []struct {
		np   kamajiv1alpha1.NetworkProfileSpec
		want []string
	}{
		{kamajiv1alpha1.NetworkProfileSpec{}, []string{"10.96.0.10"}},
		{kamajiv1alpha1.NetworkProfileSpec{ServiceCIDR: "10.100.0.0/16"}, []string{"10.100.0.10"}},
		{kamajiv1alpha1.NetworkProfileSpec{ServiceCIDRs: []string{"fd00:10:96::/112", "10.32.0.0/12"}}, []string{"fd00:10:96::a"}},
		{kamajiv1alpha1.NetworkProfileSpec{ServiceCIDR: "10.100.0.0/16", DNSServiceIPs: []string{"10.100.0.53"}}, []string{"10.100.0.53"}},
		{kamajiv1alpha1.NetworkProfileSpec{ServiceCIDR: "10.0.0.0/29"}, nil},
	} {
		if got := ClusterDNS(c.np); !slices.Equal(got, c.want) {
			t.Errorf("ClusterDNS(%+v) = %v, want %v", c.np, got, c.want)
		}
	}
}

func TestScalarDefaults(t *testing.T) {
	var empty kamajiv1alpha1.NetworkProfileSpec
	if Port(empty) != 6443 || ClusterDomain(empty) != "cluster.local" {
		t.Errorf("defaults: port %d, domain %q", Port(empty), ClusterDomain(empty))
	}
	set := kamajiv1alpha1.NetworkProfileSpec{Port: 31443, ClusterDomain: "tenant.local"}
	if Port(set) != 31443 || ClusterDomain(set) != "tenant.local" {
		t.Errorf("set: port %d, domain %q", Port(set), ClusterDomain(set))
	}
}
