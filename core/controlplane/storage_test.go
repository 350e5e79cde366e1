package controlplane

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func TestEtcdStorage(t *testing.T) {
	in := etcdInput()
	in.Etcd.Prefix = "/kamaji/tenants_tenant-a"
	in.EtcdServersOverrides = []string{
		"events#https://events-0:2379;https://events-1:2379",
		"/leases#https://leases:2379",
	}
	d := mustBuild(t, in)
	c := findContainer(t, d, APIServerContainer)

	for name, want := range map[string]string{
		"etcd-servers":             "https://etcd-0.etcd:2379,https://etcd-1.etcd:2379",
		"etcd-prefix":              "/kamaji/tenants_tenant-a",
		"etcd-cafile":              "/etc/kubernetes/pki/etcd/ca.crt",
		"etcd-certfile":            "/etc/kubernetes/pki/etcd/server.crt",
		"etcd-keyfile":             "/etc/kubernetes/pki/etcd/server.key",
		"etcd-compaction-interval": "0",
		"etcd-servers-overrides":   "/leases#https://leases:2379,events#https://events-0:2379;https://events-1:2379",
	} {
		if got := flag(t, c, name); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}

	v := findVolume(t, d, volumeDataStore)
	if v.Secret == nil || v.Secret.SecretName != "tenant-a-datastore-certificate" {
		t.Fatalf("datastore volume = %+v", v)
	}
	keys := []string{}
	for _, it := range v.Secret.Items {
		keys = append(keys, it.Key)
	}
	if !slices.Equal(keys, []string{"ca.crt", "server.crt", "server.key"}) {
		t.Errorf("datastore Secret keys = %q", keys)
	}
	if slices.Contains(containerNames(d.Spec.Template.Spec.Containers), KineContainer) || hasVolume(d, volumeKineFiles) {
		t.Error("kine present on etcd storage")
	}
}

func TestKineStorage(t *testing.T) {
	in := kineInput()
	dep := &in.TCP.Spec.ControlPlane.Deployment
	dep.ExtraArgs = &kamajiv1alpha1.ControlPlaneExtraArgs{Kine: []string{"--listen-address=127.0.0.1:12379", "--metrics-bind-address=:0"}}
	kineResources := corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}}
	dep.Resources = &kamajiv1alpha1.ControlPlaneComponentsResources{Kine: &kineResources}
	dep.SecurityContext = &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr.To(true)}
	in.Kine.Endpoint = "http://127.0.0.1:12379"
	d := mustBuild(t, in)

	k := findContainer(t, d, KineContainer)
	if k.Image != "rancher/kine:v0.13.0" {
		t.Errorf("kine image = %q", k.Image)
	}
	wantArgs := []string{
		"--endpoint=mysql://$(DB_USER):$(DB_PASSWORD)@tcp(mysql:3306)/tenant_a",
		"--listen-address=127.0.0.1:12379",
		"--metrics-bind-address=:0",
	}
	if !slices.Equal(k.Args, wantArgs) {
		t.Errorf("kine args:\n got %q\nwant %q", k.Args, wantArgs)
	}
	// Credentials come from the Secret, in the given order ($(VAR) references depend on it);
	// the memory limit's GOMEMLIMIT after them.
	if len(k.Env) != 3 || k.Env[0].Name != "DB_USER" || k.Env[1].Name != "DB_PASSWORD" || k.Env[2].Name != "GOMEMLIMIT" {
		t.Fatalf("kine env = %+v", k.Env)
	}
	if ref := k.Env[1].ValueFrom.SecretKeyRef; ref == nil || ref.Name != "tenant-a-datastore-config" || ref.Key != "DB_PASSWORD" {
		t.Errorf("DB_PASSWORD ref = %+v", ref)
	}
	if !equality.Semantic.DeepEqual(k.Resources, kineResources) {
		t.Errorf("kine resources = %+v", k.Resources)
	}
	if k.SecurityContext == nil || !*k.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("kine securityContext = %+v", k.SecurityContext)
	}

	// Files: the Secret's keys under the default path, items in a stable order.
	m, ok := mountAt(k, DefaultKineFilesPath)
	if !ok || m.Name != volumeKineFiles || !m.ReadOnly || m.SubPath != "" {
		t.Errorf("kine files mount = %+v (mounts %q)", m, mountPaths(k))
	}
	v := findVolume(t, d, volumeKineFiles)
	wantItems := []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}, {Key: "server.key", Path: "server.key"}}
	if v.Secret == nil || v.Secret.SecretName != "tenant-a-datastore-config" || !equality.Semantic.DeepEqual(v.Secret.Items, wantItems) {
		t.Errorf("kine files volume = %+v", v.Secret)
	}

	// kube-apiserver talks to kine on loopback: no etcd TLS flags, files or volume.
	api := findContainer(t, d, APIServerContainer)
	if got := flag(t, api, "etcd-servers"); got != "http://127.0.0.1:12379" {
		t.Errorf("--etcd-servers = %q, want the kine endpoint", got)
	}
	for _, f := range []string{"etcd-prefix", "etcd-cafile", "etcd-certfile", "etcd-keyfile"} {
		if hasFlag(api, f) {
			t.Errorf("--%s set with kine", f)
		}
	}
	for _, p := range mountPaths(api) {
		if strings.HasPrefix(p, "/etc/kubernetes/pki/etcd/") {
			t.Errorf("etcd file %s mounted with kine", p)
		}
	}
	if hasVolume(d, volumeDataStore) {
		t.Error("etcd certificate volume present with kine")
	}
}

func TestKineDefaultsAndOptionalFiles(t *testing.T) {
	in := kineInput()
	in.Kine.FilesPath = ""
	in.Kine.Files = nil // every key of the Secret
	d := mustBuild(t, in)
	if got := flag(t, findContainer(t, d, APIServerContainer), "etcd-servers"); got != DefaultKineEndpoint {
		t.Errorf("--etcd-servers = %q, want %q", got, DefaultKineEndpoint)
	}
	if v := findVolume(t, d, volumeKineFiles); v.Secret.Items != nil {
		t.Errorf("items = %+v, want all keys", v.Secret.Items)
	}

	in.Kine.FilesSecret = ""
	in.Kine.FilesPath = "/custom"
	d = mustBuild(t, in)
	if hasVolume(d, volumeKineFiles) || findContainer(t, d, KineContainer).VolumeMounts != nil {
		t.Error("kine files volume without a FilesSecret")
	}

	in = kineInput()
	in.Kine.FilesPath = "/etc/kine/tls"
	if _, ok := mountAt(findContainer(t, mustBuild(t, in), KineContainer), "/etc/kine/tls"); !ok {
		t.Error("FilesPath not honoured")
	}
}

// Removing a kine extra arg brings kine's own value back.
func TestKineExtraArgRemoval(t *testing.T) {
	in := kineInput()
	in.TCP.Spec.ControlPlane.Deployment.ExtraArgs = &kamajiv1alpha1.ControlPlaneExtraArgs{Kine: []string{"--listen-address=0.0.0.0:2379", "--debug"}}
	k := findContainer(t, mustBuild(t, in), KineContainer)
	if flag(t, k, "listen-address") != "0.0.0.0:2379" || !slices.Contains(k.Args, "--debug") {
		t.Fatalf("extra args not applied: %q", k.Args)
	}
	in.TCP.Spec.ControlPlane.Deployment.ExtraArgs = nil
	k = findContainer(t, mustBuild(t, in), KineContainer)
	if flag(t, k, "listen-address") != "127.0.0.1:2379" || slices.Contains(k.Args, "--debug") {
		t.Errorf("after removal: %q", k.Args)
	}
}
