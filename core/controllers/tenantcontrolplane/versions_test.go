package tenantcontrolplane_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// Tenants of the tested window's minors, and one older (accepted, as in Kamaji), get their
// version's images and the flags of their minor, which are the same from v1.30 to v1.37 (see
// core/controlplane/versions.go); the condition says whether the version is tested. Each
// becomes Ready.
func TestTenantVersions(t *testing.T) {
	etcd := testkit.StartEtcd(t)
	if err := env.Client.Create(ctxT(t), dataStoreFor("versions", etcd)); err != nil {
		t.Fatal(err)
	}
	deployment := func(name string) *appsv1.Deployment {
		d := &appsv1.Deployment{}
		eventually(t, "the Deployment of "+name, func(ctx context.Context) (bool, error) {
			err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, d)
			return err == nil, err
		})
		return d
	}
	container := func(d *appsv1.Deployment, name string) corev1.Container {
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("no container %s", name)
		return corev1.Container{}
	}
	var reference *appsv1.Deployment
	for _, c := range []struct {
		name, version string
		tested        metav1.ConditionStatus
	}{
		{"v137", "v1.37.2", metav1.ConditionTrue},
		{"v134", "v1.34.4", metav1.ConditionTrue},
		{"v130", "v1.30.14", metav1.ConditionTrue},
		{"v128", "v1.28.15", metav1.ConditionFalse},
	} {
		t.Run(c.version, func(t *testing.T) {
			tcp := newTCP(c.name, c.version)
			tcp.Spec.DataStore = "versions"
			if err := env.Client.Create(ctxT(t), tcp); err != nil {
				t.Fatal(err)
			}
			d := deployment(c.name)
			for _, comp := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
				ctr := container(d, comp)
				if want := "registry.k8s.io/" + comp + ":" + c.version; ctr.Image != want {
					t.Errorf("%s image %s, want %s", comp, ctr.Image, want)
				}
				if reference == nil {
					continue
				}
				// The same flags as the v1.37 tenant, once the names that differ are aligned.
				ref := container(reference, comp)
				if len(ctr.Args) != len(ref.Args) {
					t.Errorf("%s: %d flags, the v1.37 tenant has %d:\n%q\n%q", comp, len(ctr.Args), len(ref.Args), ctr.Args, ref.Args)
					continue
				}
				for i := range ctr.Args {
					if flagName(ctr.Args[i]) != flagName(ref.Args[i]) {
						t.Errorf("%s flag %d: %s, the v1.37 tenant has %s", comp, i, ctr.Args[i], ref.Args[i])
					}
				}
			}
			if reference == nil {
				reference = d
			}
			rollOut(t, c.name)
			ready := waitStatus(t, c.name, kamajiv1alpha1.VersionReady)
			if ready.Status.Kubernetes.Version.Version != c.version {
				t.Errorf("installed %q", ready.Status.Kubernetes.Version.Version)
			}
			cond := meta.FindStatusCondition(ready.Status.Conditions, kamajiv1alpha1.ConditionKubernetesVersionTested)
			if cond == nil || cond.Status != c.tested {
				t.Errorf("KubernetesVersionTested %+v, want %s", cond, c.tested)
			}
		})
	}
	if t.Failed() {
		return
	}
	// One minor at a time from the oldest: v1.28 -> v1.29 is accepted (and still untested).
	updateTCP(t, "v128", func(x *kamajiv1alpha1.TenantControlPlane) { x.Spec.Kubernetes.Version = "v1.29.9" })
	eventually(t, "the v1.29 images", func(ctx context.Context) (bool, error) {
		d := &appsv1.Deployment{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "v128"}, d); err != nil {
			return false, err
		}
		return container(d, "kube-apiserver").Image == "registry.k8s.io/kube-apiserver:v1.29.9", fmt.Errorf("image %s", container(d, "kube-apiserver").Image)
	})
}

func flagName(arg string) string {
	name, _, _ := strings.Cut(arg, "=")
	return name
}
