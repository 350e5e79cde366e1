package tenantcontrolplane_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	tcpcontroller "github.com/openhcp/kamaji/core/controllers/tenantcontrolplane"
	"github.com/openhcp/kamaji/core/testenv"
	"github.com/openhcp/kamaji/sdk/testkit"
)

func dataStoreCondition(ctx context.Context, t *testing.T, name string) *metav1.Condition {
	return meta.FindStatusCondition(getTCP(ctx, t, name).Status.Conditions, kamajiv1alpha1.ConditionDataStoreReady)
}

// pluginPIDs finds the running etcd datastore plugins this test binary's manager started: its
// own children only (testenv.Children), not other packages' plugins of the same name.
func pluginPIDs(t *testing.T) []int {
	t.Helper()
	var pids []int
	for _, pid := range testenv.Children(os.Getpid()) {
		cmd, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err == nil && strings.Contains(string(cmd), "kamaji-datastore-etcd") {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestFailuresAndExposure(t *testing.T) {
	etcd := testkit.StartEtcd(t)
	if err := env.Client.Create(ctxT(t), dataStoreFor("failures", etcd)); err != nil {
		t.Fatal(err)
	}

	t.Run("an unreachable datastore is a condition, and recovery provisions", func(t *testing.T) {
		dead := dataStoreFor("dead", etcd)
		dead.Spec.Endpoints = []string{"127.0.0.1:1"}
		if err := env.Client.Create(ctxT(t), dead); err != nil {
			t.Fatal(err)
		}
		tcp := newTCP("on-dead", "v1.37.2")
		tcp.Spec.DataStore = "dead"
		if err := env.Client.Create(ctxT(t), tcp); err != nil {
			t.Fatal(err)
		}
		eventually(t, "DataStoreReady=False ProvisioningFailed", func(ctx context.Context) (bool, error) {
			c := dataStoreCondition(ctx, t, "on-dead")
			return c != nil && c.Status == metav1.ConditionFalse && c.Reason == "ProvisioningFailed", fmt.Errorf("%+v", c)
		})
		if st := versionStatus(getTCP(ctxT(t), t, "on-dead")); st != kamajiv1alpha1.VersionProvisioning {
			t.Errorf("status %s, want Provisioning", st)
		}
		// What needs no datastore goes on (the Service, the certificates); the Deployment, which
		// needs the slice's connection, is not built, and its condition says why.
		eventually(t, "ControlPlaneAvailable=False WaitingForDataStore", func(ctx context.Context) (bool, error) {
			c := meta.FindStatusCondition(getTCP(ctx, t, "on-dead").Status.Conditions, kamajiv1alpha1.ConditionControlPlaneAvailable)
			return c != nil && c.Status == metav1.ConditionFalse && c.Reason == tcpcontroller.ReasonWaitingForDataStore, fmt.Errorf("%+v", c)
		})
		if err := env.Client.Get(ctxT(t), client.ObjectKey{Namespace: "default", Name: "on-dead"}, &appsv1.Deployment{}); err == nil {
			t.Error("a Deployment exists for a TCP that never got a datastore slice")
		}
		if !meta.IsStatusConditionTrue(getTCP(ctxT(t), t, "on-dead").Status.Conditions, kamajiv1alpha1.ConditionCertificatesReady) {
			t.Errorf("the certificates wait for the datastore: %v", getTCP(ctxT(t), t, "on-dead").Status.Conditions)
		}
		// The datastore comes back (the endpoint is fixed): the TCP is provisioned.
		setEndpoints(t, "dead", etcd.Endpoints)
		eventually(t, "DataStoreReady=True after recovery", func(ctx context.Context) (bool, error) {
			c := dataStoreCondition(ctx, t, "on-dead")
			return c != nil && c.Status == metav1.ConditionTrue, fmt.Errorf("%+v", c)
		})
	})

	t.Run("a plugin crash during reconciles is survived", func(t *testing.T) {
		pids := pluginPIDs(t)
		if len(pids) == 0 {
			t.Fatal("no running etcd plugin")
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		tcp := newTCP("after-crash", "v1.37.2")
		tcp.Spec.DataStore = "failures"
		if err := env.Client.Create(ctxT(t), tcp); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the TCP to be provisioned by the restarted plugin", func(ctx context.Context) (bool, error) {
			c := dataStoreCondition(ctx, t, "after-crash")
			return c != nil && c.Status == metav1.ConditionTrue, fmt.Errorf("%+v", c)
		})
		after := pluginPIDs(t)
		for _, p := range after {
			for _, old := range pids {
				if p == old {
					t.Fatalf("plugin %d survived SIGKILL?", p)
				}
			}
		}
		user, err := etcd.Client(t).UserGet(ctxT(t), getTCP(ctxT(t), t, "after-crash").Spec.DataStoreUsername)
		if err != nil || len(user.Roles) != 1 {
			t.Fatalf("the tenant user after the restart: %v %v", user, err)
		}
	})

	t.Run("NodePort, LoadBalancer and Ingress exposure", func(t *testing.T) {
		np := newTCP("nodeport", "v1.37.2")
		np.Spec.DataStore = "failures"
		np.Spec.ControlPlane.Service.ServiceType = "NodePort"
		np.Spec.NetworkProfile.Port = 31443
		np.Spec.ControlPlane.Ingress = &kamajiv1alpha1.IngressSpec{Hostname: "np.example.com", IngressClassName: "nginx"}
		lb := newTCP("loadbalancer", "v1.37.2")
		lb.Spec.DataStore = "failures"
		lb.Spec.ControlPlane.Service.ServiceType = "LoadBalancer"
		lb.Spec.NetworkProfile.LoadBalancerClass = ptr.To("example.com/vip")
		lb.Spec.NetworkProfile.LoadBalancerSourceRanges = []string{"10.0.0.0/8"}
		for _, o := range []*kamajiv1alpha1.TenantControlPlane{np, lb} {
			if err := env.Client.Create(ctxT(t), o); err != nil {
				t.Fatal(err)
			}
		}
		svc := &corev1.Service{}
		eventually(t, "the NodePort Service", func(ctx context.Context) (bool, error) {
			err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "nodeport"}, svc)
			return err == nil, err
		})
		if svc.Spec.Type != corev1.ServiceTypeNodePort || svc.Spec.Ports[0].NodePort != 31443 {
			t.Errorf("service %+v", svc.Spec)
		}
		ing := &networkingv1.Ingress{}
		eventually(t, "the Ingress", func(ctx context.Context) (bool, error) {
			err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "nodeport"}, ing)
			return err == nil, err
		})
		if ing.Spec.Rules[0].Host != "np.example.com" || *ing.Spec.IngressClassName != "nginx" {
			t.Errorf("ingress %+v", ing.Spec)
		}
		updateTCP(t, "nodeport", func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.ControlPlane.Ingress = nil })
		eventually(t, "the Ingress to be removed with its spec", func(ctx context.Context) (bool, error) {
			err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "nodeport"}, &networkingv1.Ingress{})
			return err != nil, nil
		})

		eventually(t, "the LoadBalancer TCP to wait for its address", func(ctx context.Context) (bool, error) {
			c := meta.FindStatusCondition(getTCP(ctx, t, "loadbalancer").Status.Conditions, kamajiv1alpha1.ConditionServiceReady)
			return c != nil && c.Reason == "EndpointPending", fmt.Errorf("%+v", c)
		})
		lbSvc := &corev1.Service{}
		if err := env.Client.Get(ctxT(t), client.ObjectKey{Namespace: "default", Name: "loadbalancer"}, lbSvc); err != nil {
			t.Fatal(err)
		}
		if *lbSvc.Spec.LoadBalancerClass != "example.com/vip" || lbSvc.Spec.LoadBalancerSourceRanges[0] != "10.0.0.0/8" {
			t.Errorf("load balancer fields %+v", lbSvc.Spec)
		}
		// Play the load balancer controller: a host name only, then an IP.
		setIngress := func(ing corev1.LoadBalancerIngress) {
			if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				s := &corev1.Service{}
				if err := env.Client.Get(ctxT(t), client.ObjectKey{Namespace: "default", Name: "loadbalancer"}, s); err != nil {
					return err
				}
				s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{ing}
				return env.Client.Status().Update(ctxT(t), s)
			}); err != nil {
				t.Fatal(err)
			}
		}
		setIngress(corev1.LoadBalancerIngress{Hostname: "lb.example.com"})
		eventually(t, "a clear condition for a host-name-only load balancer", func(ctx context.Context) (bool, error) {
			c := meta.FindStatusCondition(getTCP(ctx, t, "loadbalancer").Status.Conditions, kamajiv1alpha1.ConditionServiceReady)
			return c != nil && c.Reason == "LoadBalancerHostnameUnsupported" && strings.Contains(c.Message, "spec.networkProfile.address"), fmt.Errorf("%+v", c)
		})
		setIngress(corev1.LoadBalancerIngress{IP: "203.0.113.7"})
		eventually(t, "the endpoint from the load balancer IP", func(ctx context.Context) (bool, error) {
			tcp := getTCP(ctx, t, "loadbalancer")
			return tcp.Status.ControlPlaneEndpoint == "203.0.113.7:6443", fmt.Errorf("%q", tcp.Status.ControlPlaneEndpoint)
		})
		eventually(t, "the load balancer IP in the apiserver certificate", func(ctx context.Context) (bool, error) {
			s := &corev1.Secret{}
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "loadbalancer-api-server-certificate"}, s); err != nil {
				return false, err
			}
			c := certOf(t, s, "apiserver.crt")
			return strings.Contains(fmt.Sprint(c.IPAddresses), "203.0.113.7"), nil
		})
	})
}
