package node

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func service(ns, name string, ips ...string) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if len(ips) > 0 {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = ips[0], ips
	}
	return s
}

// The hosts file names the admin cluster's Services (no cluster DNS): the tenants' apiservers
// reach the manager's webhook by its Service name.
func TestHostsFileServices(t *testing.T) {
	cs := fake.NewClientset(
		service("kamaji-system", "kamaji-webhook-service", "10.96.12.34"),
		service("default", "kubernetes", "10.96.0.1"),
		service("kamaji-system", "headless", corev1.ClusterIPNone),
		service("ext", "external"),
	)
	n := New(Config{}, cs)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "tenant-00-abc"}, Spec: corev1.PodSpec{
		HostAliases: []corev1.HostAlias{{IP: "10.0.0.9", Hostnames: []string{"db", "db.local"}}},
	}}
	got := hostsFile("10.244.0.7", pod, n.serviceHosts(context.Background()))
	want := "# Kubernetes-managed hosts file (kamaji local node).\n" +
		"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"10.244.0.7\ttenant-00-abc\n" +
		"10.0.0.9\tdb\tdb.local\n" +
		"# Services of the admin cluster, as of the pod's start (no cluster DNS).\n" +
		"10.96.0.1\tkubernetes.default.svc\tkubernetes.default.svc.cluster.local\n" +
		"10.96.12.34\tkamaji-webhook-service.kamaji-system.svc\tkamaji-webhook-service.kamaji-system.svc.cluster.local\n"
	if got != want {
		t.Errorf("hosts file:\n%s\nwant:\n%s", got, want)
	}
}

// A failure to list Services leaves them out; the pod still gets its hosts file.
func TestHostsFileServicesListFails(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("list", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("forbidden")
	})
	n := New(Config{}, cs)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
	got := hostsFile("10.244.0.7", pod, n.serviceHosts(context.Background()))
	want := "# Kubernetes-managed hosts file (kamaji local node).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.244.0.7\tp\n"
	if got != want {
		t.Errorf("hosts file:\n%s\nwant:\n%s", got, want)
	}
}
