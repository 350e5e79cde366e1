package controlplane

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

type timings struct{ initialDelay, timeout, period, success, failure int32 }

func timingsOf(p *corev1.Probe) timings {
	return timings{p.InitialDelaySeconds, p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold}
}

func TestProbeTimings(t *testing.T) {
	tests := []struct {
		name                         string
		probes                       *kamajiv1alpha1.ControlPlaneProbes
		liveness, readiness, startup timings
	}{
		{
			name:      "defaults",
			liveness:  timings{10, 15, 10, 0, 8},
			readiness: timings{0, 15, 5, 0, 3},
			startup:   timings{0, 15, 1, 0, 240},
		},
		{
			name: "spec overrides field by field",
			probes: &kamajiv1alpha1.ControlPlaneProbes{
				Liveness:     &kamajiv1alpha1.ProbeSpec{FailureThreshold: ptr.To[int32](3), PeriodSeconds: ptr.To[int32](5)},
				Readiness:    &kamajiv1alpha1.ProbeSpec{SuccessThreshold: ptr.To[int32](2), TimeoutSeconds: ptr.To[int32](2)},
				StartupProbe: &kamajiv1alpha1.ProbeSpec{InitialDelaySeconds: ptr.To[int32](0), FailureThreshold: ptr.To[int32](60)},
			},
			liveness:  timings{10, 15, 5, 0, 3},
			readiness: timings{0, 2, 5, 2, 3},
			startup:   timings{0, 15, 1, 0, 60},
		},
		{
			name:      "an empty block changes nothing",
			probes:    &kamajiv1alpha1.ControlPlaneProbes{},
			liveness:  timings{10, 15, 10, 0, 8},
			readiness: timings{0, 15, 5, 0, 3},
			startup:   timings{0, 15, 1, 0, 240},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := etcdInput()
			in.TCP.Spec.ControlPlane.Deployment.Probes = tt.probes
			d := mustBuild(t, in)
			for _, name := range []string{APIServerContainer, ControllerManagerContainer, SchedulerContainer} {
				c := findContainer(t, d, name)
				if got := timingsOf(c.LivenessProbe); got != tt.liveness {
					t.Errorf("%s liveness = %+v, want %+v", name, got, tt.liveness)
				}
				if got := timingsOf(c.StartupProbe); got != tt.startup {
					t.Errorf("%s startup = %+v, want %+v", name, got, tt.startup)
				}
			}
			api := findContainer(t, d, APIServerContainer)
			if got := timingsOf(api.ReadinessProbe); got != tt.readiness {
				t.Errorf("readiness = %+v, want %+v", got, tt.readiness)
			}
		})
	}
}

// A component's block wins over the global one, field by field, for that component only; the
// global one still applies where the component's leaves a field unset.
func TestComponentProbeOverrides(t *testing.T) {
	in := etcdInput()
	in.TCP.Spec.ControlPlane.Deployment.Probes = &kamajiv1alpha1.ControlPlaneProbes{
		Liveness:     &kamajiv1alpha1.ProbeSpec{FailureThreshold: ptr.To[int32](5), PeriodSeconds: ptr.To[int32](20)},
		Readiness:    &kamajiv1alpha1.ProbeSpec{PeriodSeconds: ptr.To[int32](2)},
		StartupProbe: &kamajiv1alpha1.ProbeSpec{FailureThreshold: ptr.To[int32](30)},
		APIServer: &kamajiv1alpha1.ComponentProbes{
			Liveness:     &kamajiv1alpha1.ProbeSpec{FailureThreshold: ptr.To[int32](12)},
			Readiness:    &kamajiv1alpha1.ProbeSpec{TimeoutSeconds: ptr.To[int32](3)},
			StartupProbe: &kamajiv1alpha1.ProbeSpec{InitialDelaySeconds: ptr.To[int32](0), FailureThreshold: ptr.To[int32](90)},
		},
		ControllerManager: &kamajiv1alpha1.ComponentProbes{
			Liveness: &kamajiv1alpha1.ProbeSpec{TimeoutSeconds: ptr.To[int32](5)},
			// kube-controller-manager has no readiness probe (as in kubeadm): nothing to tune.
			Readiness: &kamajiv1alpha1.ProbeSpec{PeriodSeconds: ptr.To[int32](7)},
		},
		Scheduler: &kamajiv1alpha1.ComponentProbes{},
	}
	d := mustBuild(t, in)
	for _, tc := range []struct {
		container         string
		liveness, startup timings
	}{
		{APIServerContainer, timings{10, 15, 20, 0, 12}, timings{0, 15, 1, 0, 90}},
		{ControllerManagerContainer, timings{10, 5, 20, 0, 5}, timings{0, 15, 1, 0, 30}},
		{SchedulerContainer, timings{10, 15, 20, 0, 5}, timings{0, 15, 1, 0, 30}},
	} {
		c := findContainer(t, d, tc.container)
		if got := timingsOf(c.LivenessProbe); got != tc.liveness {
			t.Errorf("%s liveness = %+v, want %+v", tc.container, got, tc.liveness)
		}
		if got := timingsOf(c.StartupProbe); got != tc.startup {
			t.Errorf("%s startup = %+v, want %+v", tc.container, got, tc.startup)
		}
	}
	if got, want := timingsOf(findContainer(t, d, APIServerContainer).ReadinessProbe), (timings{0, 3, 2, 0, 3}); got != want {
		t.Errorf("kube-apiserver readiness = %+v, want %+v", got, want)
	}
	for _, name := range []string{ControllerManagerContainer, SchedulerContainer} {
		if p := findContainer(t, d, name).ReadinessProbe; p != nil {
			t.Errorf("%s got a readiness probe: %+v", name, p)
		}
	}

	// A component block alone, without the global ones, tunes that component only.
	in = etcdInput()
	in.TCP.Spec.ControlPlane.Deployment.Probes = &kamajiv1alpha1.ControlPlaneProbes{
		Scheduler: &kamajiv1alpha1.ComponentProbes{Liveness: &kamajiv1alpha1.ProbeSpec{PeriodSeconds: ptr.To[int32](30)}},
	}
	d = mustBuild(t, in)
	if got, want := timingsOf(findContainer(t, d, SchedulerContainer).LivenessProbe), (timings{10, 15, 30, 0, 8}); got != want {
		t.Errorf("scheduler liveness = %+v, want %+v", got, want)
	}
	if got, want := timingsOf(findContainer(t, d, APIServerContainer).LivenessProbe), (timings{10, 15, 10, 0, 8}); got != want {
		t.Errorf("kube-apiserver liveness = %+v, want the defaults %+v", got, want)
	}
}
