package controlplane

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func TestSchedulerDefaults(t *testing.T) {
	c := findContainer(t, mustBuild(t, etcdInput()), SchedulerContainer)
	want := []string{
		"--authentication-kubeconfig=/etc/kubernetes/scheduler.conf",
		"--authorization-kubeconfig=/etc/kubernetes/scheduler.conf",
		"--bind-address=0.0.0.0",
		"--kubeconfig=/etc/kubernetes/scheduler.conf",
		"--leader-elect=true",
		"--leader-elect-retry-period=5s",
	}
	if !slices.Equal(c.Args, want) {
		t.Errorf("args:\n got %q\nwant %q", c.Args, want)
	}
	if !slices.Equal(c.Command, []string{"kube-scheduler"}) || c.Image != "registry.k8s.io/kube-scheduler:v1.37.2" {
		t.Errorf("command %q image %q", c.Command, c.Image)
	}
	// Only its kubeconfig: no CA key, no PKI at all.
	if got := mountPaths(c); !slices.Equal(got, []string{"/etc/kubernetes/scheduler.conf"}) {
		t.Errorf("mounts = %q, want only scheduler.conf", got)
	}
	m, _ := mountAt(c, "/etc/kubernetes/scheduler.conf")
	if m.Name != volumeSchedulerKubeconfig || m.SubPath != KeySchedulerKubeconfig || !m.ReadOnly {
		t.Errorf("kubeconfig mount = %+v", m)
	}
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.StartupProbe} {
		if g := p.HTTPGet; g.Path != "/healthz" || g.Port != intstr.FromInt32(10259) || g.Scheme != corev1.URISchemeHTTPS {
			t.Errorf("probe = %+v, want HTTPS /healthz on 10259", g)
		}
	}
}

func TestSchedulerExtraArgsAndMounts(t *testing.T) {
	in := etcdInput()
	dep := &in.TCP.Spec.ControlPlane.Deployment
	dep.ExtraArgs = &kamajiv1alpha1.ControlPlaneExtraArgs{Scheduler: []string{"--config=/etc/scheduler/config.yaml", "--leader-elect=false"}}
	dep.AdditionalVolumes = []corev1.Volume{{Name: "scheduler-config", VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "sched"}},
	}}}
	dep.AdditionalVolumeMounts = &kamajiv1alpha1.AdditionalVolumeMounts{
		Scheduler: []corev1.VolumeMount{{Name: "scheduler-config", MountPath: "/etc/scheduler"}},
	}
	c := findContainer(t, mustBuild(t, in), SchedulerContainer)
	if flag(t, c, "config") != "/etc/scheduler/config.yaml" || flag(t, c, "leader-elect") != "false" {
		t.Errorf("extra args not applied: %q", c.Args)
	}
	if countFlag(c.Args, "leader-elect") != 1 {
		t.Errorf("--leader-elect duplicated: %q", c.Args)
	}
	if _, ok := mountAt(c, "/etc/scheduler"); !ok {
		t.Errorf("additional mount missing: %q", mountPaths(c))
	}
}
