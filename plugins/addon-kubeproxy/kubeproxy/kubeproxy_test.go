package kubeproxy

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
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/addon"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func request() addon.RenderRequest {
	return addon.RenderRequest{
		Addon: AddonName,
		Tenant: addon.TenantParameters{
			Name: "t1", Namespace: "tenants", KubernetesVersion: "v1.37.2", ClusterDomain: "cluster.local",
			ServiceCIDRs: []string{"10.96.0.0/16"}, PodCIDRs: []string{"10.244.0.0/16", "fd00:10:244::/56"},
			DNSServiceIPs:        []string{"10.96.0.10"},
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
		if o.Metadata.Labels[addon.LabelManagedBy] != "kamaji" || o.Metadata.Labels[addon.LabelAddon] != "kube-proxy" {
			t.Errorf("%s %s: labels %v", o.Kind, o.Metadata.Name, o.Metadata.Labels)
		}
	}
	want := []string{
		"v1 ServiceAccount kube-system/kube-proxy",
		"rbac.authorization.k8s.io/v1 ClusterRoleBinding /kubeadm:node-proxier",
		"rbac.authorization.k8s.io/v1 Role kube-system/kube-proxy",
		"rbac.authorization.k8s.io/v1 RoleBinding kube-system/kube-proxy",
		"v1 ConfigMap kube-system/kube-proxy",
		"apps/v1 DaemonSet kube-system/kube-proxy",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("objects:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var crb rbacv1.ClusterRoleBinding
	find(t, res, "ClusterRoleBinding", "kubeadm:node-proxier", &crb)
	if crb.RoleRef.Name != "system:node-proxier" || crb.Subjects[0].Name != "kube-proxy" || crb.Subjects[0].Namespace != "kube-system" {
		t.Errorf("ClusterRoleBinding %+v", crb)
	}
	if res.ControlPlane != nil {
		t.Error("kube-proxy returned control-plane additions")
	}
}

func TestConfigMap(t *testing.T) {
	var cm corev1.ConfigMap
	find(t, render(t, request()), "ConfigMap", "kube-proxy", &cm)
	conf := cm.Data["config.conf"]
	for _, want := range []string{
		"kind: KubeProxyConfiguration\n",
		"clusterCIDR: 10.244.0.0/16,fd00:10:244::/56\n",
		"mode: iptables\n",
		"kubeconfig: /var/lib/kube-proxy/kubeconfig.conf\n",
		`bindAddress: "0.0.0.0"`,
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("config.conf lacks %q:\n%s", want, conf)
		}
	}
	kc := cm.Data["kubeconfig.conf"]
	for _, want := range []string{
		"server: https://192.0.2.10:6443\n",
		"certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt\n",
		"tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token\n",
	} {
		if !strings.Contains(kc, want) {
			t.Errorf("kubeconfig.conf lacks %q:\n%s", want, kc)
		}
	}

	req := request()
	req.Tenant.ControlPlaneEndpoint = addon.Endpoint{Host: "fd00::10", Port: 31443}
	req.Tenant.PodCIDRs = nil
	req.Params = map[string]any{"mode": "nftables"}
	find(t, render(t, req), "ConfigMap", "kube-proxy", &cm)
	if !strings.Contains(cm.Data["kubeconfig.conf"], "server: https://[fd00::10]:31443\n") ||
		!strings.Contains(cm.Data["config.conf"], "mode: nftables\n") ||
		!strings.Contains(cm.Data["config.conf"], `bindAddress: "::"`) ||
		strings.Contains(cm.Data["config.conf"], "clusterCIDR") {
		t.Errorf("IPv6, no pod CIDR, nftables:\n%s\n%s", cm.Data["config.conf"], cm.Data["kubeconfig.conf"])
	}
}

func TestDaemonSet(t *testing.T) {
	var ds appsv1.DaemonSet
	find(t, render(t, request()), "DaemonSet", "kube-proxy", &ds)
	ps := ds.Spec.Template.Spec
	c := ps.Containers[0]
	switch {
	case !ps.HostNetwork:
		t.Error("not hostNetwork")
	case c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged:
		t.Error("not privileged")
	case len(ps.Tolerations) != 1 || ps.Tolerations[0].Operator != corev1.TolerationOpExists || ps.Tolerations[0].Key != "":
		t.Errorf("tolerations %+v, want to tolerate everything", ps.Tolerations)
	case ps.ServiceAccountName != "kube-proxy" || ps.PriorityClassName != "system-node-critical":
		t.Errorf("pod spec %+v", ps)
	case c.Image != "registry.k8s.io/kube-proxy:v1.37.2":
		t.Errorf("image %s", c.Image)
	case strings.Join(c.Command, " ") != "/usr/local/bin/kube-proxy --config=/var/lib/kube-proxy/config.conf --hostname-override=$(NODE_NAME)":
		t.Errorf("command %q", c.Command)
	case ps.Volumes[0].ConfigMap == nil || ps.Volumes[0].ConfigMap.Name != "kube-proxy" || c.VolumeMounts[0].MountPath != "/var/lib/kube-proxy":
		t.Errorf("configuration not mounted: %+v", ps.Volumes)
	}
}

func TestImages(t *testing.T) {
	for _, tc := range []struct{ version, repo, tag, want string }{
		{"v1.35.4", "", "", "registry.k8s.io/kube-proxy:v1.35.4"},
		{"1.36.3", "", "", "registry.k8s.io/kube-proxy:v1.36.3"},
		{"v1.37.0+k3s1", "", "", "registry.k8s.io/kube-proxy:v1.37.0_k3s1"},
		{"v1.37.2", "mirror.example/k8s/", "", "mirror.example/k8s/kube-proxy:v1.37.2"},
		{"v1.37.2", "", "v1.37.2-custom", "registry.k8s.io/kube-proxy:v1.37.2-custom"},
		{"v1.37.2", "mirror.example", "dev", "mirror.example/kube-proxy:dev"},
	} {
		req := request()
		req.Tenant.KubernetesVersion, req.Tenant.ImageRepository, req.Tenant.ImageTag = tc.version, tc.repo, tc.tag
		var ds appsv1.DaemonSet
		find(t, render(t, req), "DaemonSet", "kube-proxy", &ds)
		if got := ds.Spec.Template.Spec.Containers[0].Image; got != tc.want {
			t.Errorf("%s repo=%q tag=%q: %s, want %s", tc.version, tc.repo, tc.tag, got, tc.want)
		}
	}
}

func TestInvalid(t *testing.T) {
	for _, tc := range []struct {
		field  string
		modify func(*addon.RenderRequest)
	}{
		{"addon", func(r *addon.RenderRequest) { r.Addon = "coredns" }},
		{"tenant.kubernetesVersion", func(r *addon.RenderRequest) { r.Tenant.KubernetesVersion = "" }},
		{"tenant.kubernetesVersion", func(r *addon.RenderRequest) { r.Tenant.KubernetesVersion = "v2.0.0" }},
		{"tenant.controlPlaneEndpoint.host", func(r *addon.RenderRequest) { r.Tenant.ControlPlaneEndpoint.Host = "" }},
		{"tenant.controlPlaneEndpoint.host", func(r *addon.RenderRequest) { r.Tenant.ControlPlaneEndpoint.Host = "a.example:6443" }},
		{"tenant.controlPlaneEndpoint.port", func(r *addon.RenderRequest) { r.Tenant.ControlPlaneEndpoint.Port = 0 }},
		{"tenant.controlPlaneEndpoint.port", func(r *addon.RenderRequest) { r.Tenant.ControlPlaneEndpoint.Port = 70000 }},
		{"tenant.podCidrs[1]", func(r *addon.RenderRequest) { r.Tenant.PodCIDRs = []string{"10.0.0.0/8", "10.1.0.0"} }},
		{"params.mode", func(r *addon.RenderRequest) { r.Params = map[string]any{"mode": "userspace"} }},
		{"params.mode", func(r *addon.RenderRequest) { r.Params = map[string]any{"mode": 1.0} }},
		{"params.clusterCIDR", func(r *addon.RenderRequest) { r.Params = map[string]any{"clusterCIDR": "10.0.0.0/8"} }},
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
