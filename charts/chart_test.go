package charts_test

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

func TestMain(m *testing.M) {
	code := m.Run()
	if kamajiBin != "" {
		os.RemoveAll(filepath.Dir(kamajiBin))
	}
	os.Exit(code)
}

// A render of the values matrix: values files under testdata/values, the cluster version
// helm assumes, and helm flags.
type renderCase struct {
	name        string
	values      []string
	kubeVersion string
	flags       []string
	delivery    string // the plugin delivery the render must show
}

var cases = []renderCase{
	{name: "defaults", values: []string{"digests"}, kubeVersion: "1.37.0", delivery: "imageVolume"},
	{name: "defaults-kube-1.35", values: []string{"digests"}, kubeVersion: "1.35.0", delivery: "initContainer"},
	{name: "cert-manager", values: []string{"digests", "cert-manager"}, kubeVersion: "1.37.0", delivery: "imageVolume"},
	{name: "third-party-plugin", values: []string{"digests", "third-party-plugin"}, kubeVersion: "1.37.0", delivery: "imageVolume"},
	{name: "image-volume", values: []string{"digests", "image-volume"}, kubeVersion: "1.36.0", delivery: "imageVolume"},
	{name: "init-container", values: []string{"digests", "init-container"}, kubeVersion: "1.37.0", delivery: "initContainer"},
	{name: "datastores", values: []string{"digests", "datastores"}, kubeVersion: "1.37.0", delivery: "imageVolume"},
}

func (c renderCase) render(t *testing.T) string {
	t.Helper()
	args := []string{"--kube-version", c.kubeVersion}
	for _, v := range c.values {
		args = append(args, "--values", filepath.Join("testdata", "values", v+".yaml"))
	}
	out, err := render(t, "./kamaji", append(args, c.flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLint(t *testing.T) {
	if out, err := runHelm(t, "lint", "--strict", "./kamaji-crds"); err != nil {
		t.Errorf("%v\n%s", err, out)
	}
	// The kamaji chart renders only with every bundled plugin's digest known.
	for _, kube := range []string{"1.35.0", "1.37.0"} {
		if out, err := runHelm(t, "lint", "--strict", "./kamaji", "--kube-version", kube, "--values", "testdata/values/digests.yaml"); err != nil {
			t.Errorf("%v\n%s", err, out)
		}
	}
}

func TestGolden(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.render(t)
			path := filepath.Join("testdata", "golden", c.name+".yaml")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -run TestGolden -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("helm template differs from %s (go test -run TestGolden -update rewrites it after review):\n%s", path, diff(string(want), got))
			}
		})
	}
	t.Run("kamaji-crds", func(t *testing.T) {
		// The CRDs are core/config/crd's, checked object by object in TestCRDsAreTheGeneratedOnes.
		if _, err := render(t, "./kamaji-crds"); err != nil {
			t.Fatal(err)
		}
	})
}

// diff shows the first lines that differ, with a little context.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		if i < len(w) && i < len(g) && w[i] == g[i] {
			continue
		}
		var b strings.Builder
		for j := max(0, i-3); j < i+4; j++ {
			if j < len(w) {
				b.WriteString("- " + w[j] + "\n")
			}
		}
		for j := max(0, i-3); j < i+4; j++ {
			if j < len(g) {
				b.WriteString("+ " + g[j] + "\n")
			}
		}
		return "at line " + strconv.Itoa(i+1) + ":\n" + b.String()
	}
	return ""
}

// typed decodes each known kind strictly into its Go type: an unknown or misplaced field fails.
var typed = map[string]func() any{
	"v1/ServiceAccount":                                              func() any { return &corev1.ServiceAccount{} },
	"v1/ConfigMap":                                                   func() any { return &corev1.ConfigMap{} },
	"v1/Service":                                                     func() any { return &corev1.Service{} },
	"apps/v1/Deployment":                                             func() any { return &appsv1.Deployment{} },
	"policy/v1/PodDisruptionBudget":                                  func() any { return &policyv1.PodDisruptionBudget{} },
	"rbac.authorization.k8s.io/v1/ClusterRole":                       func() any { return &rbacv1.ClusterRole{} },
	"rbac.authorization.k8s.io/v1/ClusterRoleBinding":                func() any { return &rbacv1.ClusterRoleBinding{} },
	"rbac.authorization.k8s.io/v1/Role":                              func() any { return &rbacv1.Role{} },
	"rbac.authorization.k8s.io/v1/RoleBinding":                       func() any { return &rbacv1.RoleBinding{} },
	"admissionregistration.k8s.io/v1/MutatingWebhookConfiguration":   func() any { return &admissionv1.MutatingWebhookConfiguration{} },
	"admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration": func() any { return &admissionv1.ValidatingWebhookConfiguration{} },
	"apiextensions.k8s.io/v1/CustomResourceDefinition":               func() any { return &apiextensionsv1.CustomResourceDefinition{} },
}

// Kinds of other projects' CRDs the chart may render (no Go types here): only checked to be
// objects of that kind. DataStores are checked by TestDataStores.
var foreign = []string{"monitoring.coreos.com/v1/ServiceMonitor", "cert-manager.io/v1/Issuer", "cert-manager.io/v1/Certificate", "kamaji.clastix.io/v1alpha1/DataStore"}

func TestRenderedObjectsAreValidKubernetesObjects(t *testing.T) {
	check := func(t *testing.T, manifest string) {
		docs := splitDocs(t, manifest)
		if len(docs) == 0 {
			t.Fatal("nothing rendered")
		}
		for _, d := range docs {
			gvk := d.APIVersion + "/" + d.Kind
			if d.Name == "" {
				t.Errorf("%s %s: no metadata.name", d.Source, gvk)
			}
			if slices.Contains(foreign, gvk) {
				continue
			}
			newObj, ok := typed[gvk]
			if !ok {
				t.Errorf("%s: unexpected kind %s", d.Source, gvk)
				continue
			}
			if err := sigsyaml.UnmarshalStrict(d.JSON, newObj()); err != nil {
				t.Errorf("%s %s %s: %v", d.Source, gvk, d.Name, err)
			}
		}
	}
	for _, c := range append(cases, renderCase{name: "service-monitor", values: []string{"digests"}, kubeVersion: "1.37.0", flags: []string{"--set", "serviceMonitor.enabled=true"}}) {
		t.Run(c.name, func(t *testing.T) { check(t, c.render(t)) })
	}
	t.Run("kamaji-crds", func(t *testing.T) {
		out, err := render(t, "./kamaji-crds")
		if err != nil {
			t.Fatal(err)
		}
		check(t, out)
	})
}

func deployment(t *testing.T, manifest string) *appsv1.Deployment {
	t.Helper()
	ds := only(splitDocs(t, manifest), "Deployment")
	if len(ds) != 1 {
		t.Fatalf("%d Deployments rendered, want 1", len(ds))
	}
	dep := &appsv1.Deployment{}
	if err := sigsyaml.Unmarshal(ds[0].JSON, dep); err != nil {
		t.Fatal(err)
	}
	return dep
}

func TestManagerRunsNonRootOnAReadOnlyRootFilesystem(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pod := deployment(t, c.render(t)).Spec.Template.Spec
			if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
				t.Errorf("pod securityContext %+v: runAsNonRoot is not true", sc)
			}
			for _, ctr := range append(pod.InitContainers, pod.Containers...) {
				sc := ctr.SecurityContext
				switch {
				case sc == nil:
					t.Errorf("container %s: no securityContext", ctr.Name)
				case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
					t.Errorf("container %s: runAsNonRoot is not true", ctr.Name)
				case sc.RunAsUser == nil || *sc.RunAsUser == 0:
					t.Errorf("container %s: runAsUser is not a non-root uid", ctr.Name)
				case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
					t.Errorf("container %s: readOnlyRootFilesystem is not true", ctr.Name)
				case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
					t.Errorf("container %s: allowPrivilegeEscalation is not false", ctr.Name)
				case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}):
					t.Errorf("container %s: capabilities %+v do not drop ALL", ctr.Name, sc.Capabilities)
				}
				if ctr.Resources.Limits.Memory().IsZero() || ctr.Resources.Requests.Cpu().IsZero() {
					t.Errorf("container %s: no memory limit or CPU request", ctr.Name)
				}
			}
		})
	}
}

// managerFlags lists the flags of `kamaji manager` from its --help.
func managerFlags(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command(kamaji(t), "manager", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("kamaji manager --help: %v\n%s", err, out)
	}
	var flags []string
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		if m[1] != "help" && m[1] != "config" { // --config names the file itself
			flags = append(flags, m[1])
		}
	}
	if len(flags) < 20 {
		t.Fatalf("only %d flags found in kamaji manager --help:\n%s", len(flags), out)
	}
	sort.Strings(flags)
	return flags
}

// kamajiYAML is the kamaji.yaml of a render's ConfigMap.
func kamajiYAML(t *testing.T, manifest string) string {
	t.Helper()
	for _, d := range only(splitDocs(t, manifest), "ConfigMap") {
		cm := &corev1.ConfigMap{}
		if err := sigsyaml.Unmarshal(d.JSON, cm); err != nil {
			t.Fatal(err)
		}
		if conf, ok := cm.Data["kamaji.yaml"]; ok {
			return conf
		}
	}
	t.Fatal("no ConfigMap with kamaji.yaml rendered")
	return ""
}

func TestEveryManagerFlagHasAValueInTheChart(t *testing.T) {
	flags := managerFlags(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conf := map[string]any{}
			if err := sigsyaml.Unmarshal([]byte(kamajiYAML(t, c.render(t))), &conf); err != nil {
				t.Fatal(err)
			}
			for _, f := range flags {
				if _, ok := conf[f]; !ok {
					t.Errorf("kamaji manager --%s has no key in the chart's kamaji.yaml: give it a value (values.yaml config.%s, or set by a template)", f, f)
				}
			}
			for k := range conf {
				if k != "plugins" && !slices.Contains(flags, k) {
					t.Errorf("kamaji.yaml key %q is no flag of kamaji manager", k)
				}
			}
		})
	}
}

// The rendered kamaji.yaml goes through the manager's own reading and checks (file < env <
// flags, Settings.Validate, plugin entries): it stops only for want of a cluster.
func TestManagerAcceptsTheRenderedConfig(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kamaji.yaml")
			if err := os.WriteFile(path, []byte(kamajiYAML(t, c.render(t))), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(kamaji(t), "manager", "--config", path)
			cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(t.TempDir(), "none"), "KUBERNETES_SERVICE_HOST=", "POD_NAMESPACE=")
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), "kamaji: no admin cluster to talk to") {
				t.Fatalf("want the manager to stop for want of a cluster only, got %v:\n%s", err, out)
			}
		})
	}
}

func TestPluginDelivery(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := c.render(t)
			pod := deployment(t, out).Spec.Template.Spec
			conf := struct {
				Plugins []struct{ Name, Path, SHA256 string } `json:"plugins"`
			}{}
			if err := sigsyaml.Unmarshal([]byte(kamajiYAML(t, out)), &conf); err != nil {
				t.Fatal(err)
			}
			manager := pod.Containers[0]
			for _, p := range conf.Plugins {
				dir := "/opt/kamaji/plugins/" + p.Name
				if !strings.HasPrefix(p.Path, dir+"/") {
					t.Errorf("plugin %s: path %s is not under %s", p.Name, p.Path, dir)
				}
				switch c.delivery {
				case "imageVolume":
					if len(pod.InitContainers) != 0 {
						t.Errorf("image volumes, yet init containers: %v", pod.InitContainers)
					}
					vol := volume(pod, "plugin-"+p.Name)
					mount := mountAt(manager, dir)
					if vol == nil || vol.Image == nil || mount == nil || mount.Name != vol.Name || !mount.ReadOnly || mount.SubPath != "usr/local/bin" {
						t.Errorf("plugin %s: want the image volume plugin-%s mounted read-only at %s (subPath usr/local/bin), got volume %+v, mount %+v", p.Name, p.Name, dir, vol, mount)
					}
				case "initContainer":
					if pod.InitContainers[0].Name != "install-kamaji" {
						t.Fatalf("the first init container is %s, want install-kamaji", pod.InitContainers[0].Name)
					}
					var installer *corev1.Container
					for i := range pod.InitContainers {
						if pod.InitContainers[i].Name == "install-"+p.Name {
							installer = &pod.InitContainers[i]
						}
					}
					if installer == nil {
						t.Fatalf("plugin %s: no init container install-%s", p.Name, p.Name)
					}
					want := []string{"/opt/kamaji/installer/kamaji", "plugin", "install", "/usr/local/bin/" + filepath.Base(p.Path), dir}
					if !slices.Equal(installer.Command, want) {
						t.Errorf("plugin %s: init container runs %q, want %q", p.Name, installer.Command, want)
					}
					if m := mountAt(manager, "/opt/kamaji/plugins"); m == nil || !m.ReadOnly || volume(pod, m.Name).EmptyDir == nil {
						t.Errorf("the manager does not mount the plugins emptyDir read-only at /opt/kamaji/plugins: %+v", m)
					}
				}
			}
		})
	}
}

func volume(pod corev1.PodSpec, name string) *corev1.Volume {
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == name {
			return &pod.Volumes[i]
		}
	}
	return nil
}

func mountAt(c corev1.Container, path string) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].MountPath == path {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

// The tenant apiservers reach the manager's webhook through the webhook Service, by the name
// its serving certificate carries, unless config.tenant-webhook-url says otherwise.
func TestTenantWebhookURLIsTheWebhookService(t *testing.T) {
	for _, tc := range []struct {
		flags []string
		want  func(svc *corev1.Service) string
	}{
		{nil, func(svc *corev1.Service) string {
			return "https://" + svc.Name + "." + svc.Namespace + ".svc:" + strconv.Itoa(int(svc.Spec.Ports[0].Port))
		}},
		{[]string{"--set", "config.tenant-webhook-url=https://10.0.0.5:9443"}, func(*corev1.Service) string { return "https://10.0.0.5:9443" }},
	} {
		out := renderCase{name: "tenant-webhook-url", values: []string{"digests"}, kubeVersion: "1.37.0", flags: tc.flags}.render(t)
		var svc *corev1.Service
		for _, d := range only(splitDocs(t, out), "Service") {
			s := &corev1.Service{}
			if err := sigsyaml.Unmarshal(d.JSON, s); err != nil {
				t.Fatal(err)
			}
			if len(s.Spec.Ports) > 0 && s.Spec.Ports[0].Name == "webhook-server" {
				svc = s
			}
		}
		if svc == nil {
			t.Fatal("no webhook Service rendered")
		}
		conf := map[string]any{}
		if err := sigsyaml.Unmarshal([]byte(kamajiYAML(t, out)), &conf); err != nil {
			t.Fatal(err)
		}
		if got, want := conf["tenant-webhook-url"], tc.want(svc); got != want {
			t.Errorf("%v: tenant-webhook-url %v, want %s", tc.flags, got, want)
		}
	}
}
