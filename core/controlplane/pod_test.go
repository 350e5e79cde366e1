package controlplane

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// Each pod-level field of spec.controlPlane.deployment shows up in the pod template.
func TestBuildPodSettings(t *testing.T) {
	affinity := &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
			Weight: 100,
			PodAffinityTerm: corev1.PodAffinityTerm{
				TopologyKey:   "kubernetes.io/hostname",
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{kamajiv1alpha1.NameLabel: "tenant-a"}},
			},
		}},
	}}
	toleration := corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "control-plane", Effect: corev1.TaintEffectNoSchedule}
	spreadWithSelector := corev1.TopologySpreadConstraint{
		MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.ScheduleAnyway,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"custom": "x"}},
	}
	podSC := &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), FSGroup: ptr.To[int64](65532)}
	initContainer := corev1.Container{Name: "wait-for-dns", Image: "busybox", Command: []string{"nslookup", "db"}}

	tests := []struct {
		name  string
		set   func(*kamajiv1alpha1.DeploymentSpec)
		check func(*testing.T, corev1.PodSpec)
	}{
		{
			name: "nodeSelector",
			set:  func(d *kamajiv1alpha1.DeploymentSpec) { d.NodeSelector = map[string]string{"node-role": "cp"} },
			check: func(t *testing.T, ps corev1.PodSpec) {
				if ps.NodeSelector["node-role"] != "cp" || len(ps.NodeSelector) != 1 {
					t.Errorf("nodeSelector = %v", ps.NodeSelector)
				}
			},
		},
		{
			name: "tolerations",
			set:  func(d *kamajiv1alpha1.DeploymentSpec) { d.Tolerations = []corev1.Toleration{toleration} },
			check: func(t *testing.T, ps corev1.PodSpec) {
				if len(ps.Tolerations) != 1 || !equality.Semantic.DeepEqual(ps.Tolerations[0], toleration) {
					t.Errorf("tolerations = %v", ps.Tolerations)
				}
			},
		},
		{
			name: "affinity",
			set:  func(d *kamajiv1alpha1.DeploymentSpec) { d.Affinity = affinity },
			check: func(t *testing.T, ps corev1.PodSpec) {
				if !equality.Semantic.DeepEqual(ps.Affinity, affinity) {
					t.Errorf("affinity = %v", ps.Affinity)
				}
			},
		},
		{
			name: "topology spread constraints: a missing selector selects the control-plane pods, a given one is kept",
			set: func(d *kamajiv1alpha1.DeploymentSpec) {
				d.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{
					{MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.DoNotSchedule},
					spreadWithSelector,
				}
			},
			check: func(t *testing.T, ps corev1.PodSpec) {
				if len(ps.TopologySpreadConstraints) != 2 {
					t.Fatalf("constraints = %v", ps.TopologySpreadConstraints)
				}
				first := ps.TopologySpreadConstraints[0]
				if first.TopologyKey != "kubernetes.io/hostname" || first.LabelSelector == nil ||
					!equality.Semantic.DeepEqual(first.LabelSelector.MatchLabels, etcdInput().Labels) {
					t.Errorf("first constraint = %+v, want the core labels as selector", first)
				}
				if !equality.Semantic.DeepEqual(ps.TopologySpreadConstraints[1], spreadWithSelector) {
					t.Errorf("second constraint = %+v", ps.TopologySpreadConstraints[1])
				}
			},
		},
		{
			name: "runtimeClassName",
			set:  func(d *kamajiv1alpha1.DeploymentSpec) { d.RuntimeClassName = "gvisor" },
			check: func(t *testing.T, ps corev1.PodSpec) {
				if ps.RuntimeClassName == nil || *ps.RuntimeClassName != "gvisor" {
					t.Errorf("runtimeClassName = %v", ps.RuntimeClassName)
				}
			},
		},
		{
			name: "serviceAccountName",
			set:  func(d *kamajiv1alpha1.DeploymentSpec) { d.ServiceAccountName = "control-plane" },
			check: func(t *testing.T, ps corev1.PodSpec) {
				if ps.ServiceAccountName != "control-plane" {
					t.Errorf("serviceAccountName = %q", ps.ServiceAccountName)
				}
			},
		},
		{
			name: "podSecurityContext",
			set:  func(d *kamajiv1alpha1.DeploymentSpec) { d.PodSecurityContext = podSC },
			check: func(t *testing.T, ps corev1.PodSpec) {
				if !equality.Semantic.DeepEqual(ps.SecurityContext, podSC) {
					t.Errorf("securityContext = %v", ps.SecurityContext)
				}
			},
		},
		{
			name: "automountServiceAccountToken false",
			set:  func(d *kamajiv1alpha1.DeploymentSpec) { d.AutomountServiceAccountToken = ptr.To(false) },
			check: func(t *testing.T, ps corev1.PodSpec) {
				if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
					t.Errorf("automountServiceAccountToken = %v, want false", ps.AutomountServiceAccountToken)
				}
			},
		},
		{
			name: "automountServiceAccountToken true",
			set:  func(d *kamajiv1alpha1.DeploymentSpec) { d.AutomountServiceAccountToken = ptr.To(true) },
			check: func(t *testing.T, ps corev1.PodSpec) {
				if ps.AutomountServiceAccountToken == nil || !*ps.AutomountServiceAccountToken {
					t.Errorf("automountServiceAccountToken = %v, want true", ps.AutomountServiceAccountToken)
				}
			},
		},
		{
			name: "additional init container",
			set:  func(d *kamajiv1alpha1.DeploymentSpec) { d.AdditionalInitContainers = []corev1.Container{initContainer} },
			check: func(t *testing.T, ps corev1.PodSpec) {
				if len(ps.InitContainers) != 1 || !equality.Semantic.DeepEqual(ps.InitContainers[0], initContainer) {
					t.Errorf("init containers = %v", ps.InitContainers)
				}
			},
		},
		{
			name: "additional container and volume, kept as given",
			set: func(d *kamajiv1alpha1.DeploymentSpec) {
				d.AdditionalVolumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
				d.AdditionalContainers = []corev1.Container{{Name: "logger", Image: "fluent-bit", VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}}}
			},
			check: func(t *testing.T, ps corev1.PodSpec) {
				last := ps.Containers[len(ps.Containers)-1]
				if last.Name != "logger" || last.SecurityContext != nil || len(last.VolumeMounts) != 1 {
					t.Errorf("last container = %+v", last)
				}
				if v := ps.Volumes[len(ps.Volumes)-1]; v.Name != "scratch" || v.EmptyDir == nil {
					t.Errorf("last volume = %+v", v)
				}
			},
		},
		{
			name: "defaults leave the fields unset",
			set:  func(*kamajiv1alpha1.DeploymentSpec) {},
			check: func(t *testing.T, ps corev1.PodSpec) {
				if ps.NodeSelector != nil || ps.Tolerations != nil || ps.Affinity != nil || ps.TopologySpreadConstraints != nil ||
					ps.RuntimeClassName != nil || ps.ServiceAccountName != "" || ps.SecurityContext != nil || ps.InitContainers != nil ||
					ps.AutomountServiceAccountToken != nil {
					t.Errorf("unexpected pod settings: %+v", ps)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := etcdInput()
			tt.set(&in.TCP.Spec.ControlPlane.Deployment)
			tt.check(t, mustBuild(t, in).Spec.Template.Spec)
		})
	}
}

func TestBuildRejectsClashes(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Input)
		want   string
	}{
		{
			"user container named like ours",
			func(in *Input) {
				in.TCP.Spec.ControlPlane.Deployment.AdditionalContainers = []corev1.Container{{Name: APIServerContainer, Image: "x"}}
			},
			`container name "kube-apiserver" is used twice`,
		},
		{
			"init container named like an addon container",
			func(in *Input) {
				in.Additions.Containers = []corev1.Container{{Name: "konnectivity-server", Image: "x"}}
				in.TCP.Spec.ControlPlane.Deployment.AdditionalInitContainers = []corev1.Container{{Name: "konnectivity-server", Image: "x"}}
			},
			`container name "konnectivity-server" is used twice`,
		},
		{
			"user volume named like ours",
			func(in *Input) {
				in.TCP.Spec.ControlPlane.Deployment.AdditionalVolumes = []corev1.Volume{{Name: volumeCA}}
			},
			`volume name "pki-ca" is used twice`,
		},
		{
			"mount of a volume that does not exist",
			func(in *Input) {
				in.TCP.Spec.ControlPlane.Deployment.AdditionalVolumeMounts = &kamajiv1alpha1.AdditionalVolumeMounts{
					Scheduler: []corev1.VolumeMount{{Name: "nope", MountPath: "/nope"}},
				}
			},
			`container "kube-scheduler" mounts volume "nope"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := etcdInput()
			tt.mutate(&in)
			_, err := Build(in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
