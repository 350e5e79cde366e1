package controlplane

import (
	"testing"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func TestBuildImages(t *testing.T) {
	tests := []struct {
		name                 string
		rs                   kamajiv1alpha1.RegistrySettings
		apiserver, cm, sched string
	}{
		{
			name:      "defaults when empty",
			apiserver: "registry.k8s.io/kube-apiserver:v1.37.2",
			cm:        "registry.k8s.io/kube-controller-manager:v1.37.2",
			sched:     "registry.k8s.io/kube-scheduler:v1.37.2",
		},
		{
			name:      "registry override keeps the default image names",
			rs:        kamajiv1alpha1.RegistrySettings{Registry: "mirror.example.com/k8s/"},
			apiserver: "mirror.example.com/k8s/kube-apiserver:v1.37.2",
			cm:        "mirror.example.com/k8s/kube-controller-manager:v1.37.2",
			sched:     "mirror.example.com/k8s/kube-scheduler:v1.37.2",
		},
		{
			name: "image names and tag suffix",
			rs: kamajiv1alpha1.RegistrySettings{
				Registry: "quay.io/acme", APIServerImage: "apiserver", ControllerManagerImage: "kcm", SchedulerImage: "sched", TagSuffix: "-fips",
			},
			apiserver: "quay.io/acme/apiserver:v1.37.2-fips",
			cm:        "quay.io/acme/kcm:v1.37.2-fips",
			sched:     "quay.io/acme/sched:v1.37.2-fips",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := etcdInput()
			in.TCP.Spec.ControlPlane.Deployment.RegistrySettings = tt.rs
			d := mustBuild(t, in)
			for name, want := range map[string]string{APIServerContainer: tt.apiserver, ControllerManagerContainer: tt.cm, SchedulerContainer: tt.sched} {
				if got := findContainer(t, d, name).Image; got != want {
					t.Errorf("%s image = %q, want %q", name, got, want)
				}
			}
		})
	}
}
