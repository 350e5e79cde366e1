package webhooks

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func TestDefaultFillsFromSingularFields(t *testing.T) {
	tcp := &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}}
	tcp.Spec.NetworkProfile.ServiceCIDR = "10.100.0.0/16"
	tcp.Spec.NetworkProfile.PodCIDR = "10.200.0.0/16"
	DefaultTenantControlPlane(tcp, nil, "default")
	np := tcp.Spec.NetworkProfile
	if tcp.Spec.DataStore != "default" || np.ServiceCIDRs[0] != "10.100.0.0/16" || np.PodCIDRs[0] != "10.200.0.0/16" || np.DNSServiceIPs[0] != "10.100.0.10" {
		t.Fatalf("unexpected defaults: %+v %+v", tcp.Spec.DataStore, np)
	}
	if *tcp.Spec.ControlPlane.Deployment.Replicas != 2 {
		t.Fatalf("replicas not defaulted")
	}
}

func TestDefaultOnUpdateKeepsRecordedNames(t *testing.T) {
	old := &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}}
	old.Status.Storage.Setup.Schema = "ns_a"
	old.Status.Storage.Setup.User = "ns_a"
	old.Status.Storage.DataStoreName = "etcd-1"
	tcp := old.DeepCopy()
	DefaultTenantControlPlane(tcp, old, "default")
	if tcp.Spec.DataStoreSchema != "ns_a" || tcp.Spec.DataStoreUsername != "ns_a" || tcp.Spec.DataStore != "etcd-1" {
		t.Fatalf("update must keep what the status recorded, got %q %q %q", tcp.Spec.DataStoreSchema, tcp.Spec.DataStoreUsername, tcp.Spec.DataStore)
	}
}

func TestDefaultGivesTheVersionItsV(t *testing.T) {
	for in, want := range map[string]string{
		"1.37.2":      "v1.37.2",
		"v1.37.2":     "v1.37.2",
		"1.37.0-rc.1": "v1.37.0-rc.1",
		"1.37":        "1.37", // not a semantic version: left for the validator to refuse
		"latest":      "latest",
		"":            "",
	} {
		tcp := &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}}
		tcp.Spec.Kubernetes.Version = in
		DefaultTenantControlPlane(tcp, nil, "default")
		if got := tcp.Spec.Kubernetes.Version; got != want {
			t.Errorf("version %q defaulted to %q, want %q", in, got, want)
		}
	}
}
