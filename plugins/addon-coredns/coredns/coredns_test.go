package coredns

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/addon"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func request() addon.RenderRequest {
	return addon.RenderRequest{
		Addon: AddonName,
		Tenant: addon.TenantParameters{
			Name: "t1", Namespace: "tenants", KubernetesVersion: "v1.37.2", ClusterDomain: "cluster.local",
			ServiceCIDRs: []string{"10.96.0.0/16"}, PodCIDRs: []string{"10.244.0.0/16"},
			DNSServiceIPs:        []string{"10.96.0.10", "fd00::a"},
			ControlPlaneEndpoint: addon.Endpoint{Host: "192.0.2.10", Port: 6443},
		},
	}
}

func render(t *testing.T, req addon.RenderRequest) addon.RenderResult {
	t.Helper()
	res, err := Plugin{}.Render(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// find decodes the object of the given kind and name into out.
func find(t *testing.T, res addon.RenderResult, kind, name string, out any) {
	t.Helper()
	for _, b := range res.Objects {
		var meta struct {
			Kind     string
			Metadata struct{ Name string }
		}
		if err := json.Unmarshal(b, &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Kind == kind && meta.Metadata.Name == name {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
}

func image(t *testing.T, res addon.RenderResult) string {
	t.Helper()
	var d appsv1.Deployment
	find(t, res, "Deployment", "coredns", &d)
	return d.Spec.Template.Spec.Containers[0].Image
}

func TestObjects(t *testing.T) {
	res := render(t, request())
	var got []string
	for _, b := range res.Objects {
		var o struct {
			APIVersion, Kind string
			Metadata         struct {
				Name, Namespace string
				Labels          map[string]string
			}
		}
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatal(err)
		}
		got = append(got, o.APIVersion+" "+o.Kind+" "+o.Metadata.Namespace+"/"+o.Metadata.Name)
		if o.Metadata.Labels[addon.LabelManagedBy] != "kamaji" || o.Metadata.Labels[addon.LabelAddon] != "coredns" {
			t.Errorf("%s %s: labels %v", o.Kind, o.Metadata.Name, o.Metadata.Labels)
		}
		if bytes.Contains(b, []byte(`"status"`)) || bytes.Contains(b, []byte("creationTimestamp")) {
			t.Errorf("%s %s carries status or creationTimestamp: %s", o.Kind, o.Metadata.Name, b)
		}
	}
	want := []string{
		"v1 ServiceAccount kube-system/coredns",
		"rbac.authorization.k8s.io/v1 ClusterRole /system:coredns",
		"rbac.authorization.k8s.io/v1 ClusterRoleBinding /system:coredns",
		"v1 ConfigMap kube-system/coredns",
		"apps/v1 Deployment kube-system/coredns",
		"v1 Service kube-system/kube-dns",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("objects:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if res.ControlPlane != nil {
		t.Error("CoreDNS returned control-plane additions")
	}
}

func TestServiceTakesTheFirstDNSIP(t *testing.T) {
	var svc corev1.Service
	find(t, render(t, request()), "Service", "kube-dns", &svc)
	if svc.Spec.ClusterIP != "10.96.0.10" || svc.Spec.Selector["k8s-app"] != "kube-dns" || svc.Labels["k8s-app"] != "kube-dns" {
		t.Errorf("service spec %+v labels %v", svc.Spec, svc.Labels)
	}
	var ports []string
	for _, p := range svc.Spec.Ports {
		ports = append(ports, p.Name+"="+string(p.Protocol)+"/"+p.TargetPort.String())
		if p.Port != p.TargetPort.IntVal {
			t.Errorf("port %s: %d -> %s", p.Name, p.Port, p.TargetPort.String())
		}
	}
	if strings.Join(ports, ",") != "dns=UDP/53,dns-tcp=TCP/53,metrics=TCP/9153" {
		t.Errorf("ports %v", ports)
	}
}

func TestCorefileDomain(t *testing.T) {
	req := request()
	req.Tenant.ClusterDomain = "tenant.example."
	var cm corev1.ConfigMap
	find(t, render(t, req), "ConfigMap", "coredns", &cm)
	cf := cm.Data["Corefile"]
	for _, want := range []string{
		"kubernetes tenant.example in-addr.arpa ip6.arpa {",
		"disable success tenant.example\n",
		"disable denial tenant.example\n",
		"forward . /etc/resolv.conf",
	} {
		if !strings.Contains(cf, want) {
			t.Errorf("Corefile lacks %q:\n%s", want, cf)
		}
	}
	if strings.Contains(cf, "cluster.local") {
		t.Errorf("Corefile still names cluster.local:\n%s", cf)
	}
}

func TestDeployment(t *testing.T) {
	var d appsv1.Deployment
	find(t, render(t, request()), "Deployment", "coredns", &d)
	ps := d.Spec.Template.Spec
	switch {
	case *d.Spec.Replicas != 2:
		t.Errorf("replicas %d", *d.Spec.Replicas)
	case d.Spec.Selector.MatchLabels["k8s-app"] != "kube-dns" || d.Spec.Template.Labels["k8s-app"] != "kube-dns":
		t.Errorf("selector %v, template labels %v", d.Spec.Selector, d.Spec.Template.Labels)
	case ps.ServiceAccountName != "coredns" || ps.DNSPolicy != corev1.DNSDefault || ps.PriorityClassName != "system-cluster-critical":
		t.Errorf("pod spec %+v", ps)
	case ps.Volumes[0].ConfigMap.Name != "coredns" || ps.Containers[0].VolumeMounts[0].MountPath != "/etc/coredns":
		t.Errorf("Corefile not mounted: %+v", ps.Volumes)
	}
	req := request()
	req.Params = map[string]any{"replicas": 3.0}
	find(t, render(t, req), "Deployment", "coredns", &d)
	if *d.Spec.Replicas != 3 {
		t.Errorf("replicas param: %d", *d.Spec.Replicas)
	}
	req.Params = map[string]any{"replicas": 4} // an in-process caller's Go int
	find(t, render(t, req), "Deployment", "coredns", &d)
	if *d.Spec.Replicas != 4 {
		t.Errorf("replicas param as int: %d", *d.Spec.Replicas)
	}
}

func TestImages(t *testing.T) {
	for _, tc := range []struct {
		version, repo, tag, want string
	}{
		{"v1.28.15", "", "", "registry.k8s.io/coredns/coredns:v1.11.3"},
		{"v1.30.14", "", "", "registry.k8s.io/coredns/coredns:v1.11.3"},
		{"v1.32.1", "", "", "registry.k8s.io/coredns/coredns:v1.11.3"},
		{"v1.33.13", "", "", "registry.k8s.io/coredns/coredns:v1.12.0"},
		{"v1.34.4", "", "", "registry.k8s.io/coredns/coredns:v1.12.1"},
		{"v1.35.4", "", "", "registry.k8s.io/coredns/coredns:v1.13.1"},
		{"v1.36.0", "", "", "registry.k8s.io/coredns/coredns:v1.14.2"},
		{"v1.37.2", "", "", "registry.k8s.io/coredns/coredns:v1.14.6"},
		{"1.37.0-rc.1", "", "", "registry.k8s.io/coredns/coredns:v1.14.6"},
		{"v1.38.0", "", "", "registry.k8s.io/coredns/coredns:v1.14.6"},
		// kubeadm: a custom repository holds coredns directly, the default one under coredns/.
		{"v1.37.2", "mirror.example/k8s", "", "mirror.example/k8s/coredns:v1.14.6"},
		{"v1.37.2", "mirror.example/k8s/", "", "mirror.example/k8s/coredns:v1.14.6"},
		{"v1.37.2", "registry.k8s.io", "", "registry.k8s.io/coredns/coredns:v1.14.6"},
		{"v1.37.2", "", "v1.99.0", "registry.k8s.io/coredns/coredns:v1.99.0"},
		{"v1.35.0", "mirror.example", "v1.99.0", "mirror.example/coredns:v1.99.0"},
	} {
		req := request()
		req.Tenant.KubernetesVersion, req.Tenant.ImageRepository, req.Tenant.ImageTag = tc.version, tc.repo, tc.tag
		if got := image(t, render(t, req)); got != tc.want {
			t.Errorf("%s repo=%q tag=%q: %s, want %s", tc.version, tc.repo, tc.tag, got, tc.want)
		}
	}
}

func TestInvalid(t *testing.T) {
	for _, tc := range []struct {
		field  string
		modify func(*addon.RenderRequest)
	}{
		{"addon", func(r *addon.RenderRequest) { r.Addon = "kube-proxy" }},
		{"tenant.kubernetesVersion", func(r *addon.RenderRequest) { r.Tenant.KubernetesVersion = "" }},
		{"tenant.kubernetesVersion", func(r *addon.RenderRequest) { r.Tenant.KubernetesVersion = "latest" }},
		{"tenant.kubernetesVersion", func(r *addon.RenderRequest) { r.Tenant.KubernetesVersion = "v2.0.0" }},
		{"tenant.clusterDomain", func(r *addon.RenderRequest) { r.Tenant.ClusterDomain = "" }},
		{"tenant.clusterDomain", func(r *addon.RenderRequest) { r.Tenant.ClusterDomain = "a b" }},
		{"tenant.dnsServiceIps", func(r *addon.RenderRequest) { r.Tenant.DNSServiceIPs = nil }},
		{"tenant.dnsServiceIps[0]", func(r *addon.RenderRequest) { r.Tenant.DNSServiceIPs = []string{"10.96.0.300"} }},
		{"params.replicas", func(r *addon.RenderRequest) { r.Params = map[string]any{"replicas": 0.0} }},
		{"params.replicas", func(r *addon.RenderRequest) { r.Params = map[string]any{"replicas": 1.5} }},
		{"params.replicas", func(r *addon.RenderRequest) { r.Params = map[string]any{"replicas": "2"} }},
		{"params.imageTag", func(r *addon.RenderRequest) { r.Params = map[string]any{"imageTag": "v1"} }},
	} {
		req := request()
		tc.modify(&req)
		_, err := Plugin{}.Render(t.Context(), req)
		var fe *sdk.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("want a field error on %s, got %v", tc.field, err)
		}
	}
}

// TestGolden pins the whole output; run with -update after an intended change.
func TestGolden(t *testing.T) {
	res := render(t, request())
	again := render(t, request())
	var buf bytes.Buffer
	for i, b := range res.Objects {
		if !bytes.Equal(b, again.Objects[i]) {
			t.Errorf("object %d differs between two renders", i)
		}
		if err := json.Indent(&buf, b, "", "  "); err != nil {
			t.Fatal(err)
		}
		buf.WriteString("\n")
	}
	path := filepath.Join("testdata", "v1.37.2.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("render differs from %s (go test -update rewrites it):\n%s", path, buf.String())
	}
}
