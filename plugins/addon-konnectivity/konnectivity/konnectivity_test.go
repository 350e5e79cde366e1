package konnectivity

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
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
			ServiceCIDRs: []string{"10.96.0.0/16"}, PodCIDRs: []string{"10.244.0.0/16"},
			DNSServiceIPs:        []string{"10.96.0.10"},
			ControlPlaneEndpoint: addon.Endpoint{Host: "192.0.2.10", Port: 6443},
		},
	}
}

// crdDefaults is what the core passes when spec.addons.konnectivity is {} and the CRD defaults
// applied: the JSON of KonnectivitySpec.
func crdDefaults() map[string]any {
	return map[string]any{
		"server": map[string]any{"port": 8132.0, "version": "v0.34.0", "image": "registry.k8s.io/kas-network-proxy/proxy-server"},
		"agent": map[string]any{
			"version": "v0.34.0", "image": "registry.k8s.io/kas-network-proxy/proxy-agent", "mode": "DaemonSet",
			"hostNetwork": false, "tolerations": []any{map[string]any{"key": "CriticalAddonsOnly", "operator": "Exists"}},
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

func kinds(t *testing.T, res addon.RenderResult) []string {
	t.Helper()
	var out []string
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
		if o.Metadata.Labels[addon.LabelManagedBy] != "kamaji" || o.Metadata.Labels[addon.LabelAddon] != "konnectivity" {
			t.Errorf("%s %s: labels %v", o.Kind, o.Metadata.Name, o.Metadata.Labels)
		}
		out = append(out, o.APIVersion+" "+o.Kind+" "+o.Metadata.Namespace+"/"+o.Metadata.Name)
	}
	return out
}

func withParams(p map[string]any) addon.RenderRequest {
	req := request()
	req.Params = p
	return req
}

func TestObjects(t *testing.T) {
	for _, req := range []addon.RenderRequest{request(), withParams(crdDefaults())} {
		res := render(t, req)
		want := []string{
			"v1 ServiceAccount kube-system/konnectivity-agent",
			"rbac.authorization.k8s.io/v1 ClusterRoleBinding /system:konnectivity-server",
			"apps/v1 DaemonSet kube-system/konnectivity-agent",
		}
		if got := kinds(t, res); !slices.Equal(got, want) {
			t.Errorf("objects:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		var crb rbacv1.ClusterRoleBinding
		find(t, res, "ClusterRoleBinding", "system:konnectivity-server", &crb)
		if crb.RoleRef.Name != "system:auth-delegator" || len(crb.Subjects) != 1 ||
			crb.Subjects[0].Kind != "User" || crb.Subjects[0].Name != "system:konnectivity-server" {
			t.Errorf("ClusterRoleBinding %+v", crb)
		}
	}
	// The CRD's defaults and no parameters at all render the same bytes.
	a, b := render(t, request()), render(t, withParams(crdDefaults()))
	for i := range a.Objects {
		if !bytes.Equal(a.Objects[i], b.Objects[i]) {
			t.Errorf("object %d: defaults differ from the CRD's:\n%s\n%s", i, a.Objects[i], b.Objects[i])
		}
	}
}

func TestAgentDaemonSet(t *testing.T) {
	var ds appsv1.DaemonSet
	find(t, render(t, request()), "DaemonSet", "konnectivity-agent", &ds)
	ps := ds.Spec.Template.Spec
	c := ps.Containers[0]
	switch {
	case ps.HostNetwork || ps.DNSPolicy != "":
		t.Errorf("hostNetwork %t, dnsPolicy %q by default", ps.HostNetwork, ps.DNSPolicy)
	case len(ps.Tolerations) != 1 || ps.Tolerations[0].Key != "CriticalAddonsOnly" || ps.Tolerations[0].Operator != corev1.TolerationOpExists:
		t.Errorf("default tolerations %+v", ps.Tolerations)
	case ps.ServiceAccountName != "konnectivity-agent":
		t.Errorf("service account %q", ps.ServiceAccountName)
	case c.Image != "registry.k8s.io/kas-network-proxy/proxy-agent:v0.34.0":
		t.Errorf("image %s", c.Image)
	case c.LivenessProbe.HTTPGet.Port.IntVal != 8134:
		t.Errorf("liveness probe %+v", c.LivenessProbe)
	}
	want := []string{
		"--ca-cert=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
		"--proxy-server-host=192.0.2.10",
		"--proxy-server-port=8132",
		"--admin-server-port=8133",
		"--health-server-port=8134",
		"--service-account-token-path=/var/run/secrets/tokens/konnectivity-agent-token",
		"--agent-identifiers=host=$(HOST_IP)",
	}
	if !slices.Equal(c.Args, want) {
		t.Errorf("agent args:\n%s\nwant\n%s", strings.Join(c.Args, "\n"), strings.Join(want, "\n"))
	}
	tok := ps.Volumes[0].Projected.Sources[0].ServiceAccountToken
	if tok.Audience != "system:konnectivity-server" || tok.Path != "konnectivity-agent-token" ||
		c.VolumeMounts[0].MountPath != "/var/run/secrets/tokens" || c.VolumeMounts[0].Name != ps.Volumes[0].Name {
		t.Errorf("projected token %+v mounted %+v", tok, c.VolumeMounts)
	}
	if c.Env[0].Name != "HOST_IP" || c.Env[0].ValueFrom.FieldRef.FieldPath != "status.hostIP" {
		t.Errorf("env %+v", c.Env)
	}
}

func TestAgentDeploymentModeWithReplicasHostNetworkTolerations(t *testing.T) {
	res := render(t, withParams(map[string]any{"agent": map[string]any{
		"mode": "Deployment", "replicas": 3.0, "hostNetwork": true,
		"tolerations": []any{map[string]any{"operator": "Exists"}, map[string]any{"key": "dedicated", "operator": "Equal", "value": "edge", "effect": "NoSchedule"}},
	}}))
	if got := kinds(t, res); got[2] != "apps/v1 Deployment kube-system/konnectivity-agent" || len(got) != 3 {
		t.Fatalf("objects %v: want the agent as a Deployment and no DaemonSet", got)
	}
	var d appsv1.Deployment
	find(t, res, "Deployment", "konnectivity-agent", &d)
	ps := d.Spec.Template.Spec
	switch {
	case d.Spec.Replicas == nil || *d.Spec.Replicas != 3:
		t.Errorf("replicas %v", d.Spec.Replicas)
	case !ps.HostNetwork || ps.DNSPolicy != corev1.DNSClusterFirstWithHostNet:
		t.Errorf("hostNetwork %t dnsPolicy %q", ps.HostNetwork, ps.DNSPolicy)
	case len(ps.Tolerations) != 2 || ps.Tolerations[0].Operator != corev1.TolerationOpExists || ps.Tolerations[1].Value != "edge" || ps.Tolerations[1].Effect != corev1.TaintEffectNoSchedule:
		t.Errorf("tolerations %+v", ps.Tolerations)
	case ps.Affinity == nil || ps.Affinity.PodAntiAffinity == nil:
		t.Error("replicas are not spread")
	case d.Spec.Selector.MatchLabels["k8s-app"] != "konnectivity-agent":
		t.Errorf("selector %v", d.Spec.Selector)
	}

	// An explicit empty list removes the default toleration.
	var ds appsv1.DaemonSet
	find(t, render(t, withParams(map[string]any{"agent": map[string]any{"tolerations": []any{}}})), "DaemonSet", "konnectivity-agent", &ds)
	if len(ds.Spec.Template.Spec.Tolerations) != 0 {
		t.Errorf("tolerations %+v, want none", ds.Spec.Template.Spec.Tolerations)
	}
}

func TestExtraArgsOverrideByName(t *testing.T) {
	res := render(t, withParams(map[string]any{
		"server": map[string]any{"port": 31132.0, "extraArgs": []any{"--health-port=9134", "--server-count=3", "--proxy-strategies=default"}},
		"agent":  map[string]any{"extraArgs": []any{"--health-server-port=9135", "--sync-forever", "--proxy-server-host=konnectivity.example"}},
	}))
	var ds appsv1.DaemonSet
	find(t, res, "DaemonSet", "konnectivity-agent", &ds)
	c := ds.Spec.Template.Spec.Containers[0]
	if !slices.Contains(c.Args, "--proxy-server-host=konnectivity.example") || slices.Contains(c.Args, "--proxy-server-host=192.0.2.10") ||
		!slices.Contains(c.Args, "--proxy-server-port=31132") || c.Args[len(c.Args)-1] != "--sync-forever" ||
		c.LivenessProbe.HTTPGet.Port.IntVal != 9135 {
		t.Errorf("agent args %q probe %+v", c.Args, c.LivenessProbe.HTTPGet)
	}
	srv := serverOf(t, res)
	if !slices.Contains(srv.Args, "--proxy-strategies=default") || slices.Contains(srv.Args, "--proxy-strategies=destHost,default") ||
		srv.Args[len(srv.Args)-1] != "--server-count=3" || srv.LivenessProbe.HTTPGet.Port.IntVal != 9134 ||
		!slices.Contains(srv.Args, "--agent-port=31132") {
		t.Errorf("server args %q probe %+v", srv.Args, srv.LivenessProbe.HTTPGet)
	}
	if p := res.ControlPlane.ServicePorts[0]; p.Port != 31132 || p.TargetPort != 31132 {
		t.Errorf("service port %+v", p)
	}
}

func serverOf(t *testing.T, res addon.RenderResult) corev1.Container {
	t.Helper()
	if res.ControlPlane == nil || len(res.ControlPlane.Containers) != 1 {
		t.Fatalf("control plane additions %+v", res.ControlPlane)
	}
	var c corev1.Container
	if err := json.Unmarshal(res.ControlPlane.Containers[0], &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestControlPlaneAdditions(t *testing.T) {
	res := render(t, withParams(map[string]any{"server": map[string]any{
		"resources": map[string]any{"requests": map[string]any{"cpu": "50m"}, "limits": map[string]any{"memory": "128Mi"}},
	}}))
	c := serverOf(t, res)
	want := []string{
		"--uds-name=/run/konnectivity/konnectivity-server.socket",
		"--delete-existing-uds-file=true",
		"--cluster-cert=/etc/kubernetes/pki/konnectivity-server.crt",
		"--cluster-key=/etc/kubernetes/pki/konnectivity-server.key",
		"--mode=grpc",
		"--server-port=0",
		"--agent-port=8132",
		"--admin-port=8133",
		"--health-port=8134",
		"--agent-namespace=kube-system",
		"--agent-service-account=konnectivity-agent",
		"--kubeconfig=/etc/kubernetes/konnectivity-server.conf",
		"--authentication-audience=system:konnectivity-server",
		"--proxy-strategies=destHost,default",
	}
	if c.Name != "konnectivity-server" || c.Image != "registry.k8s.io/kas-network-proxy/proxy-server:v0.34.0" || !slices.Equal(c.Args, want) {
		t.Errorf("server %s %s args:\n%s", c.Name, c.Image, strings.Join(c.Args, "\n"))
	}
	if c.Resources.Requests.Cpu().String() != "50m" || c.Resources.Limits.Memory().String() != "128Mi" {
		t.Errorf("resources %+v", c.Resources)
	}
	// konnectivity-server is a Go program: 90% of its memory limit is its runtime's soft limit.
	if len(c.Env) != 1 || c.Env[0].Name != "GOMEMLIMIT" || c.Env[0].Value != "120795955" {
		t.Errorf("env %+v, want GOMEMLIMIT=120795955 (90%% of 128Mi)", c.Env)
	}
	// Without a memory limit (CPU only, or none) its runtime keeps Go's default.
	for _, res := range []any{nil, map[string]any{"limits": map[string]any{"cpu": "1"}, "requests": map[string]any{"memory": "64Mi"}}} {
		server := map[string]any{}
		if res != nil {
			server["resources"] = res
		}
		if env := serverOf(t, render(t, withParams(map[string]any{"server": server}))).Env; env != nil {
			t.Errorf("resources %v: env %+v, want none", res, env)
		}
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name + ":" + m.SubPath
	}
	wantMounts := map[string]string{
		"/run/konnectivity":                           "konnectivity-uds:",
		"/etc/kubernetes/pki/konnectivity-server.crt": "pki-konnectivity:konnectivity-server.crt",
		"/etc/kubernetes/pki/konnectivity-server.key": "pki-konnectivity:konnectivity-server.key",
		"/etc/kubernetes/konnectivity-server.conf":    "kubeconfig-konnectivity:konnectivity-server.conf",
	}
	if len(mounts) != len(wantMounts) {
		t.Errorf("mounts %v", mounts)
	}
	for p, w := range wantMounts {
		if mounts[p] != w {
			t.Errorf("mount %s: %q, want %q", p, mounts[p], w)
		}
	}

	vols := map[string]corev1.Volume{}
	for _, b := range res.ControlPlane.Volumes {
		var v corev1.Volume
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		vols[v.Name] = v
	}
	if v := vols["konnectivity-uds"]; v.EmptyDir == nil {
		t.Errorf("socket volume %+v", v)
	}
	if v := vols["pki-konnectivity"]; v.Secret == nil || v.Secret.SecretName != "t1-konnectivity-certificate" || len(v.Secret.Items) != 2 {
		t.Errorf("certificate volume %+v", v)
	}
	if v := vols["kubeconfig-konnectivity"]; v.Secret == nil || v.Secret.SecretName != "t1-konnectivity-kubeconfig" || v.Secret.Items[0].Key != "konnectivity-server.conf" {
		t.Errorf("kubeconfig volume %+v", v)
	}
	if len(vols) != 3 {
		t.Errorf("volumes %v", vols)
	}
	sp := res.ControlPlane.ServicePorts
	if len(sp) != 1 || sp[0] != (addon.ServicePort{Name: "konnectivity-server", Port: 8132, TargetPort: 8132, Protocol: "TCP"}) {
		t.Errorf("service ports %+v", sp)
	}
	// kube-apiserver gets the flag, the file it names and the socket directory, together.
	if a := res.ControlPlane.APIServerExtraArgs; !slices.Equal(a, []string{"--egress-selector-config-file=/etc/kubernetes/konnectivity/egress-selector-configuration.yaml"}) {
		t.Errorf("apiserver args %q", a)
	}
	if f := res.ControlPlane.Files; len(f) != 1 || f[0].Path != "/etc/kubernetes/konnectivity/egress-selector-configuration.yaml" ||
		!bytes.Equal(f[0].Content, EgressSelectorConfiguration()) {
		t.Errorf("files %+v", f)
	}
	var apiMounts []corev1.VolumeMount
	for _, b := range res.ControlPlane.APIServerVolumeMounts {
		var m corev1.VolumeMount
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		apiMounts = append(apiMounts, m)
	}
	if len(apiMounts) != 1 || !reflect.DeepEqual(apiMounts[0], corev1.VolumeMount{Name: "konnectivity-uds", MountPath: "/run/konnectivity"}) {
		t.Errorf("kube-apiserver mounts %+v", apiMounts)
	}
	if _, ok := vols[apiMounts[0].Name]; !ok {
		t.Errorf("kube-apiserver mounts %q, which is not among the volumes", apiMounts[0].Name)
	}
}

func TestImages(t *testing.T) {
	for _, tc := range []struct {
		params             map[string]any
		repo, tag          string
		wantAgent, wantSrv string
	}{
		{nil, "", "", "registry.k8s.io/kas-network-proxy/proxy-agent:v0.34.0", "registry.k8s.io/kas-network-proxy/proxy-server:v0.34.0"},
		{map[string]any{"agent": map[string]any{"image": "quay.io/me/agent", "version": "v0.35.0"}, "server": map[string]any{"version": "v0.33.1"}}, "", "",
			"quay.io/me/agent:v0.35.0", "registry.k8s.io/kas-network-proxy/proxy-server:v0.33.1"},
		{nil, "mirror.example/knp/", "", "mirror.example/knp/proxy-agent:v0.34.0", "mirror.example/knp/proxy-server:v0.34.0"},
		{nil, "", "v0.99.0", "registry.k8s.io/kas-network-proxy/proxy-agent:v0.99.0", "registry.k8s.io/kas-network-proxy/proxy-server:v0.99.0"},
		{map[string]any{"agent": map[string]any{"image": "quay.io/me/agent"}}, "mirror.example", "dev", "mirror.example/agent:dev", "mirror.example/proxy-server:dev"},
	} {
		req := withParams(tc.params)
		req.Tenant.ImageRepository, req.Tenant.ImageTag = tc.repo, tc.tag
		res := render(t, req)
		var ds appsv1.DaemonSet
		find(t, res, "DaemonSet", "konnectivity-agent", &ds)
		if got := ds.Spec.Template.Spec.Containers[0].Image; got != tc.wantAgent {
			t.Errorf("%v repo=%q tag=%q: agent %s, want %s", tc.params, tc.repo, tc.tag, got, tc.wantAgent)
		}
		if got := serverOf(t, res).Image; got != tc.wantSrv {
			t.Errorf("%v repo=%q tag=%q: server %s, want %s", tc.params, tc.repo, tc.tag, got, tc.wantSrv)
		}
	}
}

func TestInvalid(t *testing.T) {
	for _, tc := range []struct {
		field  string
		modify func(*addon.RenderRequest)
	}{
		{"addon", func(r *addon.RenderRequest) { r.Addon = "coredns" }},
		{"tenant.name", func(r *addon.RenderRequest) { r.Tenant.Name = "" }},
		{"tenant.controlPlaneEndpoint.host", func(r *addon.RenderRequest) { r.Tenant.ControlPlaneEndpoint.Host = "" }},
		{"tenant.controlPlaneEndpoint.host", func(r *addon.RenderRequest) { r.Tenant.ControlPlaneEndpoint.Host = "a:b" }},
		{"params.foo", func(r *addon.RenderRequest) { r.Params = map[string]any{"foo": 1.0} }},
		{"params.server", func(r *addon.RenderRequest) { r.Params = map[string]any{"server": "x"} }},
		{"params.server.ports", func(r *addon.RenderRequest) { r.Params = map[string]any{"server": map[string]any{"ports": 1.0}} }},
		{"params.server.port", func(r *addon.RenderRequest) { r.Params = map[string]any{"server": map[string]any{"port": 80.0}} }},
		{"params.server.port", func(r *addon.RenderRequest) { r.Params = map[string]any{"server": map[string]any{"port": 8134.0}} }},
		{"params.server.port", func(r *addon.RenderRequest) { r.Params = map[string]any{"server": map[string]any{"port": 8132.5}} }},
		{"params.server.image", func(r *addon.RenderRequest) { r.Params = map[string]any{"server": map[string]any{"image": 1.0}} }},
		{"params.server.resources", func(r *addon.RenderRequest) {
			r.Params = map[string]any{"server": map[string]any{"resources": map[string]any{"request": map[string]any{}}}}
		}},
		{"params.server.extraArgs[0]", func(r *addon.RenderRequest) {
			r.Params = map[string]any{"server": map[string]any{"extraArgs": []any{"v=4"}}}
		}},
		{"params.server.extraArgs", func(r *addon.RenderRequest) {
			r.Params = map[string]any{"server": map[string]any{"extraArgs": []any{"--health-port=x"}}}
		}},
		{"params.agent.mode", func(r *addon.RenderRequest) {
			r.Params = map[string]any{"agent": map[string]any{"mode": "StatefulSet"}}
		}},
		{"params.agent.replicas", func(r *addon.RenderRequest) { r.Params = map[string]any{"agent": map[string]any{"mode": "Deployment"}} }},
		{"params.agent.replicas", func(r *addon.RenderRequest) {
			r.Params = map[string]any{"agent": map[string]any{"mode": "Deployment", "replicas": 0.0}}
		}},
		{"params.agent.replicas", func(r *addon.RenderRequest) { r.Params = map[string]any{"agent": map[string]any{"replicas": 2.0}} }},
		{"params.agent.hostNetwork", func(r *addon.RenderRequest) {
			r.Params = map[string]any{"agent": map[string]any{"hostNetwork": "true"}}
		}},
		{"params.agent.tolerations", func(r *addon.RenderRequest) {
			r.Params = map[string]any{"agent": map[string]any{"tolerations": []any{map[string]any{"keys": "x"}}}}
		}},
		{"params.agent.extraArgs", func(r *addon.RenderRequest) { r.Params = map[string]any{"agent": map[string]any{"extraArgs": "--v=2"}} }},
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

// TestGolden pins the whole output in both agent modes; run with -update after an intended change.
func TestGolden(t *testing.T) {
	for name, params := range map[string]map[string]any{
		"daemonset":  nil,
		"deployment": {"agent": map[string]any{"mode": "Deployment", "replicas": 2.0, "hostNetwork": true}},
	} {
		res := render(t, withParams(params))
		again := render(t, withParams(params))
		var buf bytes.Buffer
		all := append(slices.Clone(res.Objects), res.ControlPlane.Containers...)
		all = append(all, res.ControlPlane.Volumes...)
		all = append(all, res.ControlPlane.APIServerVolumeMounts...)
		for _, f := range res.ControlPlane.Files {
			b, err := json.Marshal(map[string]string{"path": f.Path, "content": string(f.Content)})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b)
		}
		for _, b := range all {
			if err := json.Indent(&buf, b, "", "  "); err != nil {
				t.Fatal(err)
			}
			buf.WriteString("\n")
		}
		for i := range res.Objects {
			if !bytes.Equal(res.Objects[i], again.Objects[i]) {
				t.Errorf("%s: object %d differs between two renders", name, i)
			}
		}
		path := filepath.Join("testdata", name+".json")
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
}
