// Package netprofile reads a TenantControlPlane's spec.networkProfile the one way every consumer
// must agree on (the apiserver's flags, the controller manager's, kubeadm's ClusterConfiguration,
// the kubelet configuration, the addons): the dual-stack lists before the deprecated singular
// fields, the CRD's defaults where both are empty, and the cluster DNS address the defaulting
// webhook sets, for a TCP it never saw (one stored before spec.networkProfile had a default, or
// written while the webhook was not registered).
package netprofile

import (
	"fmt"
	"math/big"
	"net/netip"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// The CRD's defaults of spec.networkProfile.
const (
	DefaultServiceCIDR   = "10.96.0.0/16"
	DefaultPodCIDR       = "10.244.0.0/16"
	DefaultClusterDomain = "cluster.local"
	DefaultPort          = int32(6443)
)

// ServiceRanges is serviceCidrs, else serviceCidr, else the default Service range.
func ServiceRanges(np kamajiv1alpha1.NetworkProfileSpec) []string {
	return ranges(np.ServiceCIDRs, np.ServiceCIDR, DefaultServiceCIDR)
}

// PodRanges is podCidrs, else podCidr, else the default Pod range.
func PodRanges(np kamajiv1alpha1.NetworkProfileSpec) []string {
	return ranges(np.PodCIDRs, np.PodCIDR, DefaultPodCIDR)
}

func ranges(list []string, single, def string) []string {
	switch {
	case len(list) > 0:
		return list
	case single != "":
		return []string{single}
	default:
		return []string{def}
	}
}

// ClusterDNS is dnsServiceIPs, else the tenth address of the first Service range (kubeadm's
// rule, and the address the CoreDNS addon gives its Service); nil when that range has no tenth
// address.
func ClusterDNS(np kamajiv1alpha1.NetworkProfileSpec) []string {
	if len(np.DNSServiceIPs) > 0 {
		return np.DNSServiceIPs
	}
	ip, err := NthAddress(ServiceRanges(np)[0], 10)
	if err != nil {
		return nil
	}
	return []string{ip.String()}
}

// ClusterDomain is clusterDomain, else the default.
func ClusterDomain(np kamajiv1alpha1.NetworkProfileSpec) string {
	if np.ClusterDomain != "" {
		return np.ClusterDomain
	}
	return DefaultClusterDomain
}

// NthAddress returns the n-th address of a CIDR counted from its first (10.96.0.0/16, 10 ->
// 10.96.0.10; 2001:db8::/64, 10 -> 2001:db8::a), as kubeadm picks the cluster DNS address.
func NthAddress(cidr string, n int64) (netip.Addr, error) {
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return netip.Addr{}, err
	}
	base := new(big.Int).SetBytes(prefix.Masked().Addr().AsSlice())
	base.Add(base, big.NewInt(n))
	raw := base.Bytes()
	size := prefix.Addr().BitLen() / 8
	if len(raw) > size {
		return netip.Addr{}, fmt.Errorf("%s has no address %d", cidr, n)
	}
	buf := make([]byte, size)
	copy(buf[size-len(raw):], raw)
	addr, _ := netip.AddrFromSlice(buf)
	if !prefix.Contains(addr) {
		return netip.Addr{}, fmt.Errorf("%s has no address %d", cidr, n)
	}
	return addr, nil
}

// Port is port, else the default.
func Port(np kamajiv1alpha1.NetworkProfileSpec) int32 {
	if np.Port != 0 {
		return np.Port
	}
	return DefaultPort
}
