package tenantpki

import (
	"net"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openhcp/kamaji/core/api/v1alpha1"
)

func testTCP() *v1alpha1.TenantControlPlane {
	tcp := &v1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: "tenant", Namespace: "team-a"},
		Spec: v1alpha1.TenantControlPlaneSpec{
			ControlPlane: v1alpha1.ControlPlane{Ingress: &v1alpha1.IngressSpec{Hostname: "ingress.example.com:443"}},
			NetworkProfile: v1alpha1.NetworkProfileSpec{
				Address:          "192.168.1.10",
				AdvertiseAddress: "192.168.1.11",
				ServiceCIDRs:     []string{"10.96.0.0/16", "fd00:10:96::/112"},
				CertSANs:         []string{"api.example.com", "203.0.113.7", "api.example.com"},
				ClusterDomain:    "tenant.local",
			},
		},
	}
	tcp.Status.Kubernetes.Service.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "198.51.100.9"}, {Hostname: "lb.example.com"}}
	tcp.Status.ControlPlaneEndpoint = "192.168.1.10:6443"
	return tcp
}

func TestAPIServerSANs(t *testing.T) {
	got := APIServerSANs(testTCP(), "tenant", "10.0.0.5", "172.16.0.2", "extra.example.com")
	wantDNS := []string{
		"api.example.com", "extra.example.com", "ingress.example.com",
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.tenant.local",
		"lb.example.com", "localhost",
		"tenant", "tenant.team-a", "tenant.team-a.svc", "tenant.team-a.svc.cluster.local",
	}
	if !slices.Equal(got.DNSNames, wantDNS) {
		t.Errorf("DNS names\n got %v\nwant %v", got.DNSNames, wantDNS)
	}
	wantIPs := []string{"10.0.0.5", "10.96.0.1", "127.0.0.1", "172.16.0.2", "192.168.1.10", "192.168.1.11", "198.51.100.9", "203.0.113.7", "fd00:10:96::1"}
	if s := ipStrings(got.IPs); !slices.Equal(s, wantIPs) {
		t.Errorf("IPs\n got %v\nwant %v", s, wantIPs)
	}
}

// Missing service, CIDR and domain fall back to the CRD defaults; the legacy serviceCidr is used
// when serviceCidrs is empty.
func TestAPIServerSANsDefaults(t *testing.T) {
	tcp := &v1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Name: "t", Namespace: "ns"}}
	got := APIServerSANs(tcp, "", "")
	if want := []string{"10.96.0.1", "127.0.0.1"}; !slices.Equal(ipStrings(got.IPs), want) {
		t.Errorf("IPs %v, want %v", ipStrings(got.IPs), want)
	}
	if !slices.Contains(got.DNSNames, "kubernetes.default.svc.cluster.local") || slices.Contains(got.DNSNames, "") {
		t.Errorf("DNS names %v", got.DNSNames)
	}
	tcp.Spec.NetworkProfile.ServiceCIDR = "10.32.0.0/12"
	if got := APIServerSANs(tcp, "", ""); !slices.Contains(ipStrings(got.IPs), "10.32.0.1") {
		t.Errorf("legacy serviceCidr ignored: %v", ipStrings(got.IPs))
	}
}

// The result does not depend on the input order, so recomputing SANs never triggers a reissue.
func TestAPIServerSANsDeterministic(t *testing.T) {
	a := testTCP()
	b := testTCP()
	slices.Reverse(b.Spec.NetworkProfile.CertSANs)
	slices.Reverse(b.Status.Kubernetes.Service.LoadBalancer.Ingress)
	x, y := APIServerSANs(a, "tenant", "10.0.0.5"), APIServerSANs(b, "tenant", "10.0.0.5")
	if !slices.Equal(x.DNSNames, y.DNSNames) || !slices.EqualFunc(x.IPs, y.IPs, net.IP.Equal) {
		t.Fatal("SANs depend on input order")
	}
}

func ipStrings(ips []net.IP) []string {
	var s []string
	for _, ip := range ips {
		s = append(s, ip.String())
	}
	return s
}
