package controlplane

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func testTCP() *kamajiv1alpha1.TenantControlPlane {
	return &kamajiv1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: "tenant-a", Namespace: "tenants"},
		Spec: kamajiv1alpha1.TenantControlPlaneSpec{
			ControlPlane: kamajiv1alpha1.ControlPlane{
				Service: kamajiv1alpha1.ServiceSpec{ServiceType: kamajiv1alpha1.ServiceTypeClusterIP},
			},
			Kubernetes: kamajiv1alpha1.KubernetesSpec{Version: "v1.37.2"},
		},
	}
}

func testSecrets() Secrets {
	return Secrets{
		CA:                          "tenant-a-ca",
		APIServer:                   "tenant-a-api-server-certificate",
		APIServerKubeletClient:      "tenant-a-api-server-kubelet-client-certificate",
		FrontProxyCA:                "tenant-a-front-proxy-ca-certificate",
		FrontProxyClient:            "tenant-a-front-proxy-client-certificate",
		ServiceAccount:              "tenant-a-sa-certificate",
		ControllerManagerKubeconfig: "tenant-a-controller-manager-kubeconfig",
		SchedulerKubeconfig:         "tenant-a-scheduler-kubeconfig",
	}
}

// etcdInput is a complete Input on an etcd datastore.
func etcdInput() Input {
	return Input{
		TCP: testTCP(),
		Etcd: &EtcdStorage{
			Servers:    []string{"https://etcd-0.etcd:2379", "https://etcd-1.etcd:2379"},
			Prefix:     "/tenants_tenant-a",
			CertSecret: "tenant-a-datastore-certificate",
		},
		Secrets:         testSecrets(),
		SecretsChecksum: "sha256:abc",
		Labels: map[string]string{
			kamajiv1alpha1.NameLabel:      "tenant-a",
			kamajiv1alpha1.ManagedByLabel: kamajiv1alpha1.ManagedByValue,
		},
	}
}

// kineInput is a complete Input on a SQL datastore through kine.
func kineInput() Input {
	in := etcdInput()
	in.Etcd = nil
	in.Kine = &KineStorage{
		Image: "rancher/kine:v0.13.0",
		Args:  []string{"--endpoint=mysql://$(DB_USER):$(DB_PASSWORD)@tcp(mysql:3306)/tenant_a", "--listen-address=127.0.0.1:2379"},
		Env: []corev1.EnvVar{
			{Name: "DB_USER", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "tenant-a-datastore-config"}, Key: "DB_USER",
			}}},
			{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "tenant-a-datastore-config"}, Key: "DB_PASSWORD",
			}}},
		},
		FilesSecret: "tenant-a-datastore-config",
		Files: []corev1.KeyToPath{
			{Key: "server.key", Path: "server.key"},
			{Key: "ca.crt", Path: "ca.crt"},
		},
	}
	return in
}

func mustBuild(t *testing.T, in Input) *appsv1.Deployment {
	t.Helper()
	d, err := Build(in)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return d
}

func findContainer(t *testing.T, d *appsv1.Deployment, name string) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q in %v", name, containerNames(d.Spec.Template.Spec.Containers))
	return corev1.Container{}
}

func containerNames(cs []corev1.Container) []string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

func findVolume(t *testing.T, d *appsv1.Deployment, name string) corev1.Volume {
	t.Helper()
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %q", name)
	return corev1.Volume{}
}

func hasVolume(d *appsv1.Deployment, name string) bool {
	return slices.ContainsFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == name })
}

func mountAt(c corev1.Container, path string) (corev1.VolumeMount, bool) {
	for _, m := range c.VolumeMounts {
		if m.MountPath == path {
			return m, true
		}
	}
	return corev1.VolumeMount{}, false
}

func mountPaths(c corev1.Container) []string {
	var paths []string
	for _, m := range c.VolumeMounts {
		paths = append(paths, m.MountPath)
	}
	return paths
}

// flag returns the value of --name in c's args, failing if absent.
func flag(t *testing.T, c corev1.Container, name string) string {
	t.Helper()
	v, ok := argValue(c.Args, name)
	if !ok {
		t.Fatalf("%s has no --%s in %v", c.Name, name, c.Args)
	}
	return v
}

func hasFlag(c corev1.Container, name string) bool {
	_, ok := argValue(c.Args, name)
	return ok
}
