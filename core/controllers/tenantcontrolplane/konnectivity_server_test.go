package tenantcontrolplane

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/sdk/addon"
)

func konnectivitySC() *corev1.SecurityContext {
	return &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), AllowPrivilegeEscalation: ptr.To(false)}
}

// spec.addons.konnectivity.server.securityContext never reaches the plugin (which refuses
// parameters it does not know); the rest of the spec does, unchanged.
func TestKonnectivityParamsLeaveSecurityContextToTheCore(t *testing.T) {
	tcp := &kamajiv1alpha1.TenantControlPlane{}
	tcp.Spec.Addons.Konnectivity = &kamajiv1alpha1.KonnectivitySpec{}
	tcp.Spec.Addons.Konnectivity.KonnectivityServerSpec = kamajiv1alpha1.KonnectivityServerSpec{Port: 8132, Image: "proxy-server", SecurityContext: konnectivitySC()}
	specs, err := enabledAddons(tcp)
	if err != nil || len(specs) != 1 {
		t.Fatalf("enabledAddons = %v, %v", specs, err)
	}
	server, ok := specs[0].params["server"].(map[string]any)
	if !ok {
		t.Fatalf("params = %v", specs[0].params)
	}
	if _, ok := server["securityContext"]; ok {
		t.Errorf("securityContext sent to the plugin: %v", server)
	}
	if server["port"] != float64(8132) || server["image"] != "proxy-server" {
		t.Errorf("other server parameters lost: %v", server)
	}
	if tcp.Spec.Addons.Konnectivity.KonnectivityServerSpec.SecurityContext == nil {
		t.Error("the TCP was modified")
	}
}

func TestKonnectivityServerSecurityContext(t *testing.T) {
	render := func() map[string]addon.RenderResult {
		return map[string]addon.RenderResult{
			"konnectivity": {ControlPlane: &addon.ControlPlaneAdditions{Containers: [][]byte{
				[]byte(`{"name":"konnectivity-server","image":"i","securityContext":{"privileged":false}}`),
			}}},
			"other": {ControlPlane: &addon.ControlPlaneAdditions{Containers: [][]byte{[]byte(`{"name":"other","image":"o"}`)}}},
		}
	}
	t.Run("unset keeps what the plugin rendered", func(t *testing.T) {
		p := renderPass(render())
		p.tcp.Spec.Addons.Konnectivity = &kamajiv1alpha1.KonnectivitySpec{}
		if err := mergeAdditions(p); err != nil {
			t.Fatal(err)
		}
		if sc := p.additions.Containers[0].SecurityContext; sc == nil || sc.Privileged == nil || *sc.Privileged {
			t.Errorf("konnectivity-server securityContext = %v", sc)
		}
	})
	t.Run("set replaces it on konnectivity-server only", func(t *testing.T) {
		p := renderPass(render())
		p.tcp.Spec.Addons.Konnectivity = &kamajiv1alpha1.KonnectivitySpec{}
		p.tcp.Spec.Addons.Konnectivity.KonnectivityServerSpec.SecurityContext = konnectivitySC()
		if err := mergeAdditions(p); err != nil {
			t.Fatal(err)
		}
		for _, c := range p.additions.Containers {
			switch c.Name {
			case "konnectivity-server":
				if !equality.Semantic.DeepEqual(c.SecurityContext, konnectivitySC()) {
					t.Errorf("konnectivity-server securityContext = %v", c.SecurityContext)
				}
				c.SecurityContext.RunAsUser = ptr.To[int64](0)
				if *p.tcp.Spec.Addons.Konnectivity.KonnectivityServerSpec.SecurityContext.RunAsUser != 65532 {
					t.Error("the container aliases the TCP's securityContext")
				}
			case "other":
				if c.SecurityContext != nil {
					t.Errorf("another addon's container got %v", c.SecurityContext)
				}
			}
		}
	})
	t.Run("set without the container is an error naming the field", func(t *testing.T) {
		p := renderPass(map[string]addon.RenderResult{"konnectivity": {ControlPlane: &addon.ControlPlaneAdditions{
			Containers: [][]byte{[]byte(`{"name":"proxy","image":"i"}`)},
		}}})
		p.tcp.Spec.Addons.Konnectivity = &kamajiv1alpha1.KonnectivitySpec{}
		p.tcp.Spec.Addons.Konnectivity.KonnectivityServerSpec.SecurityContext = konnectivitySC()
		err := mergeAdditions(p)
		if err == nil || !strings.Contains(err.Error(), "spec.addons.konnectivity.server.securityContext") {
			t.Fatalf("err = %v", err)
		}
	})
}

func obj(apiVersion, kind, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

func TestKonnectivityStatusObjects(t *testing.T) {
	t0 := time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
	ks := &kamajiv1alpha1.KonnectivityStatus{}
	objs := []*unstructured.Unstructured{
		obj("v1", "ServiceAccount", "kube-system", "konnectivity-agent"),
		obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", "system:konnectivity-server"),
		obj("apps/v1", "DaemonSet", "kube-system", "konnectivity-agent"),
	}
	konnectivityObjects(ks, objs, true, t0)
	want := kamajiv1alpha1.ExternalKubernetesObjectStatus{Name: "konnectivity-agent", Namespace: "kube-system", LastUpdate: metav1.NewTime(t0)}
	if ks.ServiceAccount != want {
		t.Errorf("sa = %+v", ks.ServiceAccount)
	}
	if crb := ks.ClusterRoleBinding; crb.Name != "system:konnectivity-server" || crb.Namespace != "" || !crb.LastUpdate.Time.Equal(t0) {
		t.Errorf("clusterrolebinding = %+v", crb)
	}
	if a := ks.Agent; a.Name != "konnectivity-agent" || a.Namespace != "kube-system" || a.Mode != kamajiv1alpha1.KonnectivityAgentModeDaemonSet {
		t.Errorf("agent = %+v", a)
	}

	// Unchanged objects keep their lastUpdate; the agent mode follows the workload's kind.
	t1 := t0.Add(time.Hour)
	objs[2] = obj("apps/v1", "Deployment", "kube-system", "konnectivity-agent")
	konnectivityObjects(ks, objs, false, t1)
	if !ks.ServiceAccount.LastUpdate.Time.Equal(t0) {
		t.Errorf("sa lastUpdate moved without a change: %v", ks.ServiceAccount.LastUpdate)
	}
	if ks.Agent.Mode != kamajiv1alpha1.KonnectivityAgentModeDeployment {
		t.Errorf("agent mode = %q", ks.Agent.Mode)
	}

	forgetKonnectivityObjects(ks)
	if ks.ServiceAccount.Name != "" || ks.ClusterRoleBinding.Name != "" || ks.Agent.Name != "" || ks.Agent.Mode != "" {
		t.Errorf("not forgotten: %+v", ks)
	}
}

func TestKonnectivityServiceStatus(t *testing.T) {
	p := renderPass(nil)
	p.status.Kubernetes.Service = kamajiv1alpha1.KubernetesServiceStatus{Name: "t1", Namespace: "ns", Port: 6443}
	p.status.Kubernetes.Service.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.7"}}
	p.addonPorts = map[string][]corev1.ServicePort{AddonKonnectivity: {{Name: "konnectivity-server", Port: 8132}}}
	konnectivityService(p)
	s := p.status.Addons.Konnectivity.Service
	if s == nil || s.Name != "t1" || s.Namespace != "ns" || s.Port != 8132 || s.LoadBalancer.Ingress[0].IP != "203.0.113.7" {
		t.Fatalf("konnectivity service = %+v", s)
	}
	if p.status.Kubernetes.Service.Port != 6443 {
		t.Error("the TCP's own service status changed")
	}
	p.addonPorts = map[string][]corev1.ServicePort{}
	konnectivityService(p)
	if p.status.Addons.Konnectivity.Service != nil {
		t.Error("konnectivity service kept without konnectivity")
	}
}
