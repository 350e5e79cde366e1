package controlplane

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// The kubeadm-like flags a default TenantControlPlane on etcd gets.
func TestAPIServerDefaultFlags(t *testing.T) {
	c := findContainer(t, mustBuild(t, etcdInput()), APIServerContainer)
	want := []string{
		"--advertise-address=$(POD_IP)",
		"--allow-privileged=true",
		"--authorization-mode=Node,RBAC",
		"--client-ca-file=/etc/kubernetes/pki/ca.crt",
		"--enable-bootstrap-token-auth=true",
		"--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
		"--etcd-certfile=/etc/kubernetes/pki/etcd/server.crt",
		"--etcd-compaction-interval=0",
		"--etcd-keyfile=/etc/kubernetes/pki/etcd/server.key",
		"--etcd-prefix=/tenants_tenant-a",
		"--etcd-servers=https://etcd-0.etcd:2379,https://etcd-1.etcd:2379",
		"--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
		"--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
		"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
		"--proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt",
		"--proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key",
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-username-headers=X-Remote-User",
		"--secure-port=6443",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=/etc/kubernetes/pki/sa.pub",
		"--service-account-signing-key-file=/etc/kubernetes/pki/sa.key",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--shutdown-send-retry-after=true",
		"--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
		"--tls-private-key-file=/etc/kubernetes/pki/apiserver.key",
	}
	if !slices.Equal(c.Args, want) {
		t.Errorf("args:\n got %q\nwant %q", c.Args, want)
	}
	if !slices.Equal(c.Command, []string{"kube-apiserver"}) {
		t.Errorf("command = %q", c.Command)
	}
	// The pod IP comes from the downward API.
	if len(c.Env) != 2 || c.Env[0].Name != "GOGC" || c.Env[0].Value != APIServerGOGC || c.Env[1].Name != "POD_IP" || c.Env[1].ValueFrom == nil || c.Env[1].ValueFrom.FieldRef.FieldPath != "status.podIP" {
		t.Errorf("env = %+v, want GOGC=%s and POD_IP from status.podIP", c.Env, APIServerGOGC)
	}
	if hasFlag(c, "enable-admission-plugins") || hasFlag(c, "etcd-servers-overrides") {
		t.Errorf("optional flags set without a reason: %q", c.Args)
	}
}

func TestAPIServerFlagsFromSpec(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(*Input)
		want     map[string]string // flag -> value
		noPodEnv bool
	}{
		{
			name: "advertiseAddress wins over address",
			mutate: func(in *Input) {
				in.TCP.Spec.NetworkProfile.Address = "192.0.2.10"
				in.TCP.Spec.NetworkProfile.AdvertiseAddress = "192.0.2.20"
			},
			want:     map[string]string{"advertise-address": "192.0.2.20"},
			noPodEnv: true,
		},
		{
			name:     "address when no advertiseAddress",
			mutate:   func(in *Input) { in.TCP.Spec.NetworkProfile.Address = "192.0.2.10" },
			want:     map[string]string{"advertise-address": "192.0.2.10"},
			noPodEnv: true,
		},
		{
			name:   "port",
			mutate: func(in *Input) { in.TCP.Spec.NetworkProfile.Port = 31443 },
			want:   map[string]string{"secure-port": "31443"},
		},
		{
			name: "dual-stack service CIDRs win over the deprecated field",
			mutate: func(in *Input) {
				in.TCP.Spec.NetworkProfile.ServiceCIDR = "10.0.0.0/16"
				in.TCP.Spec.NetworkProfile.ServiceCIDRs = []string{"10.96.0.0/12", "fd00:10:96::/112"}
			},
			want: map[string]string{"service-cluster-ip-range": "10.96.0.0/12,fd00:10:96::/112"},
		},
		{
			name:   "deprecated service CIDR as fallback",
			mutate: func(in *Input) { in.TCP.Spec.NetworkProfile.ServiceCIDR = "10.0.0.0/16" },
			want:   map[string]string{"service-cluster-ip-range": "10.0.0.0/16"},
		},
		{
			name:   "cluster domain in the issuer",
			mutate: func(in *Input) { in.TCP.Spec.NetworkProfile.ClusterDomain = "tenant.internal" },
			want:   map[string]string{"service-account-issuer": "https://kubernetes.default.svc.tenant.internal"},
		},
		{
			name: "admission plugins in the given order",
			mutate: func(in *Input) {
				in.TCP.Spec.Kubernetes.AdmissionControllers = kamajiv1alpha1.AdmissionControllers{"ServiceAccount", "NodeRestriction", "AlwaysPullImages"}
			},
			want: map[string]string{"enable-admission-plugins": "ServiceAccount,NodeRestriction,AlwaysPullImages"},
		},
		{
			name: "preferred address types override, in order",
			mutate: func(in *Input) {
				in.TCP.Spec.Kubernetes.Kubelet.PreferredAddressTypes = []kamajiv1alpha1.KubeletPreferredAddressType{"Hostname", "InternalIP"}
			},
			want: map[string]string{"kubelet-preferred-address-types": "Hostname,InternalIP"},
		},
		{
			name: "an extra arg overrides the core flag of the same name",
			mutate: func(in *Input) {
				in.TCP.Spec.ControlPlane.Deployment.ExtraArgs = &kamajiv1alpha1.ControlPlaneExtraArgs{
					APIServer: []string{"--authorization-mode=Node,RBAC,Webhook", "--audit-log-path=-"},
				}
			},
			want: map[string]string{"authorization-mode": "Node,RBAC,Webhook", "audit-log-path": "-"},
		},
		{
			name: "addon args are added, and the user's extra args win over them",
			mutate: func(in *Input) {
				in.Additions.APIServerArgs = []string{"--egress-selector-config-file=/etc/konnectivity/egress.yaml", "--v=2"}
				in.TCP.Spec.ControlPlane.Deployment.ExtraArgs = &kamajiv1alpha1.ControlPlaneExtraArgs{APIServer: []string{"--v=6"}}
			},
			want: map[string]string{"egress-selector-config-file": "/etc/konnectivity/egress.yaml", "v": "6"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := etcdInput()
			tt.mutate(&in)
			c := findContainer(t, mustBuild(t, in), APIServerContainer)
			for name, want := range tt.want {
				if got := flag(t, c, name); got != want {
					t.Errorf("--%s = %q, want %q", name, got, want)
				}
			}
			if n := countFlag(c.Args, "authorization-mode"); n != 1 {
				t.Errorf("--authorization-mode appears %d times", n)
			}
			if tt.noPodEnv && len(c.Env) != 1 {
				t.Errorf("POD_IP env set although an address is given: %+v", c.Env)
			}
		})
	}
}

func countFlag(args []string, name string) int {
	n := 0
	for _, a := range args {
		if flagName(a) == name {
			n++
		}
	}
	return n
}

// Args are rebuilt on every call: removing an extra arg removes it from the container, and
// removing an override brings the core's value back.
func TestAPIServerExtraArgRemoval(t *testing.T) {
	in := etcdInput()
	in.TCP.Spec.ControlPlane.Deployment.ExtraArgs = &kamajiv1alpha1.ControlPlaneExtraArgs{
		APIServer: []string{"--audit-log-path=-", "--service-account-issuer=https://issuer.example.com"},
	}
	with := findContainer(t, mustBuild(t, in), APIServerContainer)
	if flag(t, with, "audit-log-path") != "-" || flag(t, with, "service-account-issuer") != "https://issuer.example.com" {
		t.Fatalf("extra args not applied: %q", with.Args)
	}

	in.TCP.Spec.ControlPlane.Deployment.ExtraArgs = nil
	without := findContainer(t, mustBuild(t, in), APIServerContainer)
	if hasFlag(without, "audit-log-path") {
		t.Errorf("removed extra arg still present: %q", without.Args)
	}
	if got := flag(t, without, "service-account-issuer"); got != "https://kubernetes.default.svc.cluster.local" {
		t.Errorf("core issuer not restored: %q", got)
	}
}

func TestAPIServerPortAndProbes(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mutate func(*Input)
		port   int32
	}{
		{"default", func(*Input) {}, 6443},
		{"networkProfile.port", func(in *Input) { in.TCP.Spec.NetworkProfile.Port = 8443 }, 8443},
		{"an extra --secure-port moves the probes too", func(in *Input) {
			in.TCP.Spec.ControlPlane.Deployment.ExtraArgs = &kamajiv1alpha1.ControlPlaneExtraArgs{APIServer: []string{"--secure-port=9443"}}
		}, 9443},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := etcdInput()
			tt.mutate(&in)
			c := findContainer(t, mustBuild(t, in), APIServerContainer)
			want := []corev1.ContainerPort{{Name: "kube-apiserver", ContainerPort: tt.port, Protocol: corev1.ProtocolTCP}}
			if !slices.Equal(c.Ports, want) {
				t.Errorf("ports = %+v, want %+v", c.Ports, want)
			}
			for probe, path := range map[*corev1.Probe]string{c.LivenessProbe: "/livez", c.ReadinessProbe: "/readyz", c.StartupProbe: "/readyz"} {
				g := probe.HTTPGet
				if g == nil || g.Path != path || g.Port != intstr.FromInt32(tt.port) || g.Scheme != corev1.URISchemeHTTPS || g.Host != "" {
					t.Errorf("probe %s = %+v, want HTTPS %s on %d", path, g, path, tt.port)
				}
			}
		})
	}
}

func TestAPIServerMounts(t *testing.T) {
	c := findContainer(t, mustBuild(t, etcdInput()), APIServerContainer)
	want := []string{
		"/etc/kubernetes/pki/ca.crt",
		"/etc/kubernetes/pki/apiserver.crt",
		"/etc/kubernetes/pki/apiserver.key",
		"/etc/kubernetes/pki/apiserver-kubelet-client.crt",
		"/etc/kubernetes/pki/apiserver-kubelet-client.key",
		"/etc/kubernetes/pki/front-proxy-ca.crt",
		"/etc/kubernetes/pki/front-proxy-client.crt",
		"/etc/kubernetes/pki/front-proxy-client.key",
		"/etc/kubernetes/pki/sa.pub",
		"/etc/kubernetes/pki/sa.key",
		"/etc/kubernetes/pki/etcd/ca.crt",
		"/etc/kubernetes/pki/etcd/server.crt",
		"/etc/kubernetes/pki/etcd/server.key",
	}
	if got := mountPaths(c); !slices.Equal(got, want) {
		t.Errorf("mounts:\n got %q\nwant %q", got, want)
	}
	if _, ok := mountAt(c, "/etc/kubernetes/pki/ca.key"); ok {
		t.Error("kube-apiserver does not sign anything with the CA key: it must not be mounted")
	}
}

// An additional volume mounted for the apiserver shows up there and in no other container.
func TestAPIServerAdditionalVolumeMount(t *testing.T) {
	in := etcdInput()
	dep := &in.TCP.Spec.ControlPlane.Deployment
	dep.AdditionalVolumes = []corev1.Volume{{Name: "audit-policy", VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "audit"}},
	}}}
	dep.AdditionalVolumeMounts = &kamajiv1alpha1.AdditionalVolumeMounts{
		APIServer: []corev1.VolumeMount{{Name: "audit-policy", MountPath: "/etc/kubernetes/audit", ReadOnly: true}},
	}
	in.Additions.Volumes = []corev1.Volume{{Name: "konnectivity-uds", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	in.Additions.APIServerVolumeMounts = []corev1.VolumeMount{{Name: "konnectivity-uds", MountPath: "/run/konnectivity"}}
	d := mustBuild(t, in)

	api := findContainer(t, d, APIServerContainer)
	n := len(api.VolumeMounts)
	if n < 2 || api.VolumeMounts[n-2].Name != "konnectivity-uds" || api.VolumeMounts[n-1].Name != "audit-policy" {
		t.Errorf("apiserver mounts end with %+v, want the addon's then the user's", api.VolumeMounts[max(0, n-2):])
	}
	for _, name := range []string{ControllerManagerContainer, SchedulerContainer} {
		c := findContainer(t, d, name)
		for _, p := range []string{"/etc/kubernetes/audit", "/run/konnectivity"} {
			if _, ok := mountAt(c, p); ok {
				t.Errorf("%s mounts %s, meant for the apiserver only", name, p)
			}
		}
	}
	if !hasVolume(d, "audit-policy") || !hasVolume(d, "konnectivity-uds") {
		t.Error("additional volumes missing from the pod")
	}
}
