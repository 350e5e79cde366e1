package phases

import (
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func tcp() *kamajiv1alpha1.TenantControlPlane {
	return &kamajiv1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: "t1", Namespace: "ns"},
		Spec: kamajiv1alpha1.TenantControlPlaneSpec{
			Kubernetes: kamajiv1alpha1.KubernetesSpec{Version: "v1.37.2"},
			NetworkProfile: kamajiv1alpha1.NetworkProfileSpec{
				ClusterDomain: "tenant.local", ServiceCIDRs: []string{"10.96.0.0/16"}, PodCIDRs: []string{"10.244.0.0/16"},
				DNSServiceIPs: []string{"10.96.0.10"}, CertSANs: []string{"t1.example.com"},
			},
		},
	}
}

func input() Input {
	return Input{TCP: tcp(), Endpoint: "192.0.2.7:6443", CACert: []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), EtcdServers: []string{"https://etcd:2379"}}
}

func kubeletConfig(t *testing.T, x *kamajiv1alpha1.TenantControlPlane) kubeletv1beta1.KubeletConfiguration {
	t.Helper()
	b, err := KubeletConfiguration(x)
	if err != nil {
		t.Fatal(err)
	}
	var kc kubeletv1beta1.KubeletConfiguration
	if err := yaml.UnmarshalStrict(b, &kc); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return kc
}

func TestKubeletConfigurationDefaults(t *testing.T) {
	kc := kubeletConfig(t, tcp())
	if kc.Kind != "KubeletConfiguration" || kc.APIVersion != "kubelet.config.k8s.io/v1beta1" {
		t.Errorf("type %+v", kc.TypeMeta)
	}
	if kc.CgroupDriver != "systemd" || !slices.Equal(kc.ClusterDNS, []string{"10.96.0.10"}) || kc.ClusterDomain != "tenant.local" {
		t.Errorf("cgroup driver %q, DNS %v, domain %q", kc.CgroupDriver, kc.ClusterDNS, kc.ClusterDomain)
	}
	if kc.Authentication.X509.ClientCAFile != "/etc/kubernetes/pki/ca.crt" || !*kc.Authentication.Webhook.Enabled || *kc.Authentication.Anonymous.Enabled ||
		kc.Authorization.Mode != kubeletv1beta1.KubeletAuthorizationModeWebhook || !kc.RotateCertificates || kc.StaticPodPath != "/etc/kubernetes/manifests" {
		t.Errorf("kubeadm defaults missing: %+v", kc)
	}
}

func TestKubeletConfigurationFromSpec(t *testing.T) {
	x := tcp()
	x.Spec.Kubernetes.Kubelet.CGroupFS = "cgroupfs"
	x.Spec.NetworkProfile.DNSServiceIPs = nil
	x.Spec.NetworkProfile.ServiceCIDRs = []string{"10.32.0.0/12", "fd00:10:96::/112"}
	x.Spec.Kubernetes.Kubelet.ConfigurationJSONPatches = []kamajiv1alpha1.JSONPatch{
		{Op: "add", Path: "/maxPods", Value: &apiextensionsv1.JSON{Raw: []byte("42")}},
		{Op: "replace", Path: "/healthzBindAddress", Value: &apiextensionsv1.JSON{Raw: []byte(`"0.0.0.0"`)}},
		{Op: "add", Path: "/featureGates", Value: &apiextensionsv1.JSON{Raw: []byte(`{"SomeGate":true}`)}},
		{Op: "remove", Path: "/staticPodPath"},
	}
	kc := kubeletConfig(t, x)
	if kc.CgroupDriver != "cgroupfs" {
		t.Errorf("cgroup driver %q", kc.CgroupDriver)
	}
	// The first range's tenth address only: the CoreDNS addon's Service takes that one.
	if !slices.Equal(kc.ClusterDNS, []string{"10.32.0.10"}) {
		t.Errorf("cluster DNS computed from the Service ranges: %v", kc.ClusterDNS)
	}
	if kc.MaxPods != 42 || kc.HealthzBindAddress != "0.0.0.0" || !kc.FeatureGates["SomeGate"] || kc.StaticPodPath != "" {
		t.Errorf("patches not applied: maxPods %d healthz %q gates %v static %q", kc.MaxPods, kc.HealthzBindAddress, kc.FeatureGates, kc.StaticPodPath)
	}
}

func TestKubeletConfigurationBadPatchNamesIt(t *testing.T) {
	x := tcp()
	x.Spec.Kubernetes.Kubelet.ConfigurationJSONPatches = []kamajiv1alpha1.JSONPatch{
		{Op: "add", Path: "/maxPods", Value: &apiextensionsv1.JSON{Raw: []byte("42")}},
		{Op: "replace", Path: "/does/not/exist", Value: &apiextensionsv1.JSON{Raw: []byte("1")}},
	}
	_, err := KubeletConfiguration(x)
	var pe *PatchError
	if !errors.As(err, &pe) || pe.Index != 1 || !strings.Contains(err.Error(), "configurationJSONPatches[1]") {
		t.Fatalf("got %v", err)
	}
}

func TestClusterConfiguration(t *testing.T) {
	b, err := ClusterConfiguration(input())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := yaml.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration", "clusterName": "t1",
		"kubernetesVersion": "v1.37.2", "controlPlaneEndpoint": "192.0.2.7:6443", "certificatesDir": "/etc/kubernetes/pki",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for _, s := range []string{"dnsDomain: tenant.local", "serviceSubnet: 10.96.0.0/16", "podSubnet: 10.244.0.0/16", "- t1.example.com", "- 192.0.2.7", "- https://etcd:2379"} {
		if !strings.Contains(string(b), s) {
			t.Errorf("missing %q in:\n%s", s, b)
		}
	}
	if _, err := ClusterConfiguration(Input{TCP: tcp()}); err == nil {
		t.Error("no endpoint must be an error")
	}
}

// kubeadm uploads v1beta3 up to v1.30 and v1beta4 from v1.31; a node's kubeadm join reads it.
func TestClusterConfigurationPerMinor(t *testing.T) {
	for version, want := range map[string]string{
		"v1.28.15": "kubeadm.k8s.io/v1beta3", "v1.30.14": "kubeadm.k8s.io/v1beta3",
		"v1.31.0": "kubeadm.k8s.io/v1beta4", "v1.34.4": "kubeadm.k8s.io/v1beta4", "v1.37.2": "kubeadm.k8s.io/v1beta4",
	} {
		in := input()
		in.TCP.Spec.Kubernetes.Version = version
		b, err := ClusterConfiguration(in)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := yaml.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got["apiVersion"] != want {
			t.Errorf("%s: apiVersion %v, want %s", version, got["apiVersion"], want)
		}
		// proxy is a v1beta4 field.
		if _, proxy := got["proxy"]; proxy != (want == "kubeadm.k8s.io/v1beta4") {
			t.Errorf("%s: proxy present %v in:\n%s", version, proxy, b)
		}
	}
}

func TestClusterInfoIsKubeadms(t *testing.T) {
	in := input()
	b, err := ClusterInfoKubeconfig(in)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Clusters[""]
	if len(cfg.Clusters) != 1 || c == nil || c.Server != "https://192.0.2.7:6443" || string(c.CertificateAuthorityData) != string(in.CACert) {
		t.Fatalf("clusters %+v", cfg.Clusters)
	}
	if len(cfg.AuthInfos) != 0 || len(cfg.Contexts) != 0 {
		t.Errorf("cluster-info must carry no credentials nor contexts: %+v", cfg)
	}
	objs, err := ClusterInfo(in)
	if err != nil {
		t.Fatal(err)
	}
	cm := objs[0].(*corev1.ConfigMap)
	if cm.Namespace != "kube-public" || cm.Name != "cluster-info" || cm.Data["kubeconfig"] != string(b) {
		t.Errorf("configmap %+v", cm)
	}
	rb := objs[2].(*rbacv1.RoleBinding)
	if rb.Subjects[0].Name != "system:anonymous" || rb.RoleRef.Name != "kubeadm:bootstrap-signer-clusterinfo" {
		t.Errorf("anonymous access %+v", rb)
	}
	role := objs[1].(*rbacv1.Role)
	if r := role.Rules[0]; !slices.Equal(r.ResourceNames, []string{"cluster-info"}) || !slices.Equal(r.Verbs, []string{"get"}) {
		t.Errorf("role %+v", role.Rules)
	}
}

func TestRBACIsKubeadms(t *testing.T) {
	bindings := map[string]string{}
	var all []client.Object
	for _, objs := range [][]client.Object{BootstrapToken(), ClusterAdmins(), APIServerKubelet()} {
		all = append(all, objs...)
	}
	kc, err := KubeadmConfig(input())
	if err != nil {
		t.Fatal(err)
	}
	kl, err := KubeletConfig(tcp())
	if err != nil {
		t.Fatal(err)
	}
	all = append(append(all, kc...), kl...)
	for _, o := range all {
		if o.GetLabels()[kamajiv1alpha1.ManagedByLabel] != "kamaji" || o.GetLabels()[kamajiv1alpha1.PhaseLabel] == "" {
			t.Errorf("%T %s is not labelled: %v", o, o.GetName(), o.GetLabels())
		}
		switch b := o.(type) {
		case *rbacv1.ClusterRoleBinding:
			bindings[b.Name] = b.RoleRef.Name + " <- " + b.Subjects[0].Kind + ":" + b.Subjects[0].Name
		case *rbacv1.RoleBinding:
			var subjects []string
			for _, s := range b.Subjects {
				subjects = append(subjects, s.Name)
			}
			bindings[b.Namespace+"/"+b.Name] = b.RoleRef.Name + " <- " + strings.Join(subjects, ",")
		}
	}
	want := map[string]string{
		"kubeadm:get-nodes":                             "kubeadm:get-nodes <- Group:system:bootstrappers:kubeadm:default-node-token",
		"kubeadm:kubelet-bootstrap":                     "system:node-bootstrapper <- Group:system:bootstrappers:kubeadm:default-node-token",
		"kubeadm:node-autoapprove-bootstrap":            "system:certificates.k8s.io:certificatesigningrequests:nodeclient <- Group:system:bootstrappers:kubeadm:default-node-token",
		"kubeadm:node-autoapprove-certificate-rotation": "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient <- Group:system:nodes",
		"kubeadm:cluster-admins":                        "cluster-admin <- Group:kubeadm:cluster-admins",
		"system:kube-apiserver-to-kubelet":              "system:kube-apiserver-to-kubelet <- User:kube-apiserver-kubelet-client",
		"kubeadm:apiserver-kubelet-client":              "system:kubelet-api-admin <- User:kube-apiserver-kubelet-client",
		"kube-system/kubeadm:nodes-kubeadm-config":      "kubeadm:nodes-kubeadm-config <- system:bootstrappers:kubeadm:default-node-token,system:nodes",
		"kube-system/kubeadm:kubelet-config":            "kubeadm:kubelet-config <- system:nodes,system:bootstrappers:kubeadm:default-node-token",
	}
	for k, v := range want {
		if bindings[k] != v {
			t.Errorf("binding %s = %q, want %q", k, bindings[k], v)
		}
	}
	if len(bindings) != len(want) {
		t.Errorf("bindings %v", bindings)
	}
}
