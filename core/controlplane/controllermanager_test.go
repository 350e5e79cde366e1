package controlplane

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func TestControllerManagerDefaults(t *testing.T) {
	c := findContainer(t, mustBuild(t, etcdInput()), ControllerManagerContainer)
	want := []string{
		"--allocate-node-cidrs=true",
		"--authentication-kubeconfig=/etc/kubernetes/controller-manager.conf",
		"--authorization-kubeconfig=/etc/kubernetes/controller-manager.conf",
		"--bind-address=0.0.0.0",
		"--client-ca-file=/etc/kubernetes/pki/ca.crt",
		"--cluster-cidr=10.244.0.0/16",
		"--cluster-name=tenant-a",
		"--cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt",
		"--cluster-signing-key-file=/etc/kubernetes/pki/ca.key",
		"--controllers=*,bootstrapsigner,tokencleaner",
		"--kubeconfig=/etc/kubernetes/controller-manager.conf",
		"--leader-elect=true",
		"--leader-elect-retry-period=5s",
		"--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
		"--root-ca-file=/etc/kubernetes/pki/ca.crt",
		"--service-account-private-key-file=/etc/kubernetes/pki/sa.key",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--use-service-account-credentials=true",
	}
	if !slices.Equal(c.Args, want) {
		t.Errorf("args:\n got %q\nwant %q", c.Args, want)
	}
	if !slices.Equal(c.Command, []string{"kube-controller-manager"}) {
		t.Errorf("command = %q", c.Command)
	}
	if c.Image != "registry.k8s.io/kube-controller-manager:v1.37.2" {
		t.Errorf("image = %q", c.Image)
	}
	wantMounts := []string{
		"/etc/kubernetes/pki/ca.crt",
		"/etc/kubernetes/pki/ca.key",
		"/etc/kubernetes/pki/front-proxy-ca.crt",
		"/etc/kubernetes/pki/sa.key",
		"/etc/kubernetes/controller-manager.conf",
	}
	if got := mountPaths(c); !slices.Equal(got, wantMounts) {
		t.Errorf("mounts:\n got %q\nwant %q", got, wantMounts)
	}
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.StartupProbe} {
		if g := p.HTTPGet; g.Path != "/healthz" || g.Port != intstr.FromInt32(10257) || g.Scheme != corev1.URISchemeHTTPS {
			t.Errorf("probe = %+v, want HTTPS /healthz on 10257", g)
		}
	}
	if c.ReadinessProbe != nil || c.Ports != nil {
		t.Errorf("controller-manager serves no traffic: readiness %v, ports %v", c.ReadinessProbe, c.Ports)
	}
}

func TestControllerManagerFromSpec(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Input)
		want   map[string]string
	}{
		{
			name: "dual-stack pod and service CIDRs",
			mutate: func(in *Input) {
				np := &in.TCP.Spec.NetworkProfile
				np.PodCIDR, np.PodCIDRs = "10.1.0.0/16", []string{"10.244.0.0/16", "fd00:10:244::/56"}
				np.ServiceCIDRs = []string{"10.96.0.0/16", "fd00:10:96::/112"}
			},
			want: map[string]string{"cluster-cidr": "10.244.0.0/16,fd00:10:244::/56", "service-cluster-ip-range": "10.96.0.0/16,fd00:10:96::/112"},
		},
		{
			name:   "deprecated pod CIDR as fallback",
			mutate: func(in *Input) { in.TCP.Spec.NetworkProfile.PodCIDR = "10.1.0.0/16" },
			want:   map[string]string{"cluster-cidr": "10.1.0.0/16"},
		},
		{
			name: "extra args override core flags",
			mutate: func(in *Input) {
				in.TCP.Spec.ControlPlane.Deployment.ExtraArgs = &kamajiv1alpha1.ControlPlaneExtraArgs{
					ControllerManager: []string{"--allocate-node-cidrs=false", "--controllers=*,-nodeipam"},
				}
			},
			want: map[string]string{"allocate-node-cidrs": "false", "controllers": "*,-nodeipam"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := etcdInput()
			tt.mutate(&in)
			c := findContainer(t, mustBuild(t, in), ControllerManagerContainer)
			for name, want := range tt.want {
				if got := flag(t, c, name); got != want {
					t.Errorf("--%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestControllerManagerExtraArgsAndMounts(t *testing.T) {
	in := etcdInput()
	dep := &in.TCP.Spec.ControlPlane.Deployment
	dep.ExtraArgs = &kamajiv1alpha1.ControlPlaneExtraArgs{ControllerManager: []string{"--secure-port=11257", "--v=3"}}
	dep.AdditionalVolumes = []corev1.Volume{{Name: "cloud-config", VolumeSource: corev1.VolumeSource{
		Secret: &corev1.SecretVolumeSource{SecretName: "cloud"},
	}}}
	dep.AdditionalVolumeMounts = &kamajiv1alpha1.AdditionalVolumeMounts{
		ControllerManager: []corev1.VolumeMount{{Name: "cloud-config", MountPath: "/etc/cloud"}},
	}
	d := mustBuild(t, in)
	c := findContainer(t, d, ControllerManagerContainer)
	if flag(t, c, "v") != "3" {
		t.Errorf("extra arg missing: %q", c.Args)
	}
	if c.LivenessProbe.HTTPGet.Port != intstr.FromInt32(11257) {
		t.Errorf("probe does not follow --secure-port: %+v", c.LivenessProbe.HTTPGet)
	}
	if _, ok := mountAt(c, "/etc/cloud"); !ok {
		t.Errorf("additional mount missing: %q", mountPaths(c))
	}
	if _, ok := mountAt(findContainer(t, d, APIServerContainer), "/etc/cloud"); ok {
		t.Error("controller-manager mount leaked into the apiserver")
	}

	in.TCP.Spec.ControlPlane.Deployment.ExtraArgs = nil
	if c := findContainer(t, mustBuild(t, in), ControllerManagerContainer); hasFlag(c, "v") || hasFlag(c, "secure-port") {
		t.Errorf("removed extra args still present: %q", c.Args)
	}
}
