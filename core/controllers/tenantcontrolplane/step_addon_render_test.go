package tenantcontrolplane

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/sdk/addon"
)

func renderPass(renders map[string]addon.RenderResult) *pass {
	return &pass{tcp: &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Name: "t1", Namespace: "ns"}}, renders: renders}
}

func TestMergeAdditions(t *testing.T) {
	p := renderPass(map[string]addon.RenderResult{
		"konnectivity": {ControlPlane: &addon.ControlPlaneAdditions{
			Containers:            [][]byte{[]byte(`{"name":"konnectivity-server","image":"i"}`)},
			Volumes:               [][]byte{[]byte(`{"name":"konnectivity-uds","emptyDir":{}}`)},
			APIServerVolumeMounts: [][]byte{[]byte(`{"name":"konnectivity-uds","mountPath":"/run/konnectivity"}`)},
			APIServerExtraArgs:    []string{"--egress-selector-config-file=/etc/kubernetes/konnectivity/egress.yaml"},
			Files:                 []addon.File{{Path: "/etc/kubernetes/konnectivity/egress.yaml", Content: []byte("kind: EgressSelectorConfiguration\n")}},
			ServicePorts:          []addon.ServicePort{{Name: "konnectivity-server", Port: 8132}},
		}},
		"coredns": {Objects: [][]byte{[]byte(`{}`)}},
	})
	if err := mergeAdditions(p); err != nil {
		t.Fatal(err)
	}
	a := p.additions
	if len(a.Containers) != 1 || a.Containers[0].Name != "konnectivity-server" || !slices.Equal(a.APIServerArgs, []string{"--egress-selector-config-file=/etc/kubernetes/konnectivity/egress.yaml"}) {
		t.Errorf("containers %v args %v", a.Containers, a.APIServerArgs)
	}
	if len(a.Volumes) != 2 || a.Volumes[1].Name != AddonFilesVolume || a.Volumes[1].ConfigMap.Name != "t1-addon-files" {
		t.Fatalf("volumes %+v", a.Volumes)
	}
	if len(a.APIServerVolumeMounts) != 2 {
		t.Fatalf("mounts %+v", a.APIServerVolumeMounts)
	}
	m := a.APIServerVolumeMounts[1]
	if m.Name != AddonFilesVolume || m.MountPath != "/etc/kubernetes/konnectivity/egress.yaml" || !m.ReadOnly || string(p.addonFiles[m.SubPath]) != "kind: EgressSelectorConfiguration\n" {
		t.Errorf("file mount %+v, files %v", m, p.addonFiles)
	}
	if a.Volumes[1].ConfigMap.Items[0].Key != m.SubPath {
		t.Errorf("the volume does not project the mounted key: %+v", a.Volumes[1].ConfigMap.Items)
	}
	ports := p.addonPorts["konnectivity"]
	if len(ports) != 1 || ports[0].Port != 8132 || ports[0].TargetPort.IntVal != 8132 || ports[0].Protocol != "TCP" {
		t.Errorf("ports %+v", ports)
	}
	if _, ok := p.addonPorts["coredns"]; ok {
		t.Error("coredns has no ports")
	}
}

func TestMergeAdditionsRefuses(t *testing.T) {
	for name, renders := range map[string]map[string]addon.RenderResult{
		"relative file":  {"a": {ControlPlane: &addon.ControlPlaneAdditions{Files: []addon.File{{Path: "etc/x"}}}}},
		"unclean file":   {"a": {ControlPlane: &addon.ControlPlaneAdditions{Files: []addon.File{{Path: "/etc/../x"}}}}},
		"file twice":     {"a": {ControlPlane: &addon.ControlPlaneAdditions{Files: []addon.File{{Path: "/x"}}}}, "b": {ControlPlane: &addon.ControlPlaneAdditions{Files: []addon.File{{Path: "/x"}}}}},
		"core volume":    {"a": {ControlPlane: &addon.ControlPlaneAdditions{Volumes: [][]byte{[]byte(`{"name":"addon-files"}`)}}}},
		"bad container":  {"a": {ControlPlane: &addon.ControlPlaneAdditions{Containers: [][]byte{[]byte(`[`)}}}},
		"bad mount json": {"a": {ControlPlane: &addon.ControlPlaneAdditions{APIServerVolumeMounts: [][]byte{[]byte(`1`)}}}},
	} {
		if err := mergeAdditions(renderPass(renders)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestFileKeyIsAValidStableKey(t *testing.T) {
	valid := regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
	a, b := fileKey("/etc/kubernetes/konnectivity/egress selector.yaml"), fileKey("/etc/other/egress selector.yaml")
	if !valid.MatchString(a) || !valid.MatchString(b) || a == b || a != fileKey("/etc/kubernetes/konnectivity/egress selector.yaml") {
		t.Errorf("keys %q %q", a, b)
	}
	if !strings.HasSuffix(a, "-egress_selector.yaml") {
		t.Errorf("key %q does not tell the file", a)
	}
}

func TestEnabledAddonsAndTheirParameters(t *testing.T) {
	tcp := &kamajiv1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: "t1", Namespace: "ns"},
		Spec: kamajiv1alpha1.TenantControlPlaneSpec{
			Kubernetes: kamajiv1alpha1.KubernetesSpec{Version: "v1.37.2"},
			NetworkProfile: kamajiv1alpha1.NetworkProfileSpec{
				ServiceCIDR: "10.96.0.0/16", PodCIDRs: []string{"10.244.0.0/16"}, DNSServiceIPs: []string{"10.96.0.10"},
			},
			Addons: kamajiv1alpha1.AddonsSpec{
				KubeProxy: &kamajiv1alpha1.AddonSpec{ImageTag: "v1.37.0"},
				CoreDNS:   &kamajiv1alpha1.AddonSpec{ImageRepository: "mirror.example"},
				Konnectivity: &kamajiv1alpha1.KonnectivitySpec{
					KonnectivityServerSpec: kamajiv1alpha1.KonnectivityServerSpec{Port: 8132},
					KonnectivityAgentSpec:  kamajiv1alpha1.KonnectivityAgentSpec{Mode: "Deployment", Replicas: ptr.To[int32](2)},
				},
			},
		},
	}
	specs, err := enabledAddons(tcp)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range specs {
		names = append(names, s.name)
	}
	if !slices.Equal(names, []string{"konnectivity", "coredns", "kube-proxy"}) {
		t.Fatalf("addons %v", names)
	}
	k := specs[0].params
	if k["server"].(map[string]any)["port"] != 8132.0 || k["agent"].(map[string]any)["mode"] != "Deployment" || k["agent"].(map[string]any)["replicas"] != 2.0 {
		t.Errorf("konnectivity params %v", k)
	}
	tp, err := tenantParameters(tcp, "10.0.0.7:6443", specs[1])
	if err != nil {
		t.Fatal(err)
	}
	if tp.ImageRepository != "mirror.example" || tp.ImageTag != "" || tp.ClusterDomain != "cluster.local" || !slices.Equal(tp.ServiceCIDRs, []string{"10.96.0.0/16"}) ||
		tp.ControlPlaneEndpoint != (addon.Endpoint{Host: "10.0.0.7", Port: 6443}) || tp.DNSServiceIPs[0] != "10.96.0.10" {
		t.Errorf("tenant parameters %+v", tp)
	}
	tp, _ = tenantParameters(tcp, "10.0.0.7:6443", specs[2])
	if tp.ImageTag != "v1.37.0" || tp.ImageRepository != "" {
		t.Errorf("kube-proxy overrides %+v", tp)
	}
	if _, err := tenantParameters(tcp, "no-port", specs[1]); err == nil {
		t.Error("an endpoint without a port was accepted")
	}
}

// A TCP the defaulting webhook never saw (stored before spec.networkProfile had a default) has
// no dnsServiceIPs: the addons get the address the webhook would have set, the one the kubelet
// configuration gives the nodes, rather than a CoreDNS that cannot render.
func TestTenantParametersWithoutWebhookDefaults(t *testing.T) {
	tcp := &kamajiv1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: "t1", Namespace: "ns"},
		Spec: kamajiv1alpha1.TenantControlPlaneSpec{
			Kubernetes:     kamajiv1alpha1.KubernetesSpec{Version: "v1.37.2"},
			NetworkProfile: kamajiv1alpha1.NetworkProfileSpec{ServiceCIDR: "10.100.0.0/16", PodCIDR: "10.200.0.0/16"},
			Addons:         kamajiv1alpha1.AddonsSpec{CoreDNS: &kamajiv1alpha1.AddonSpec{}},
		},
	}
	specs, err := enabledAddons(tcp)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := tenantParameters(tcp, "10.0.0.7:6443", specs[0])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tp.DNSServiceIPs, []string{"10.100.0.10"}) || !slices.Equal(tp.ServiceCIDRs, []string{"10.100.0.0/16"}) ||
		!slices.Equal(tp.PodCIDRs, []string{"10.200.0.0/16"}) || tp.ClusterDomain != "cluster.local" {
		t.Errorf("tenant parameters %+v", tp)
	}
}
