package controlplane

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// Probe timings are kubeadm's for its static control-plane pods; spec.controlPlane.deployment.probes
// overrides them field by field.
func livenessProbe(path string, port int32, tune *kamajiv1alpha1.ControlPlaneProbes) *corev1.Probe {
	p := httpsProbe(path, port)
	p.InitialDelaySeconds = 10
	p.TimeoutSeconds = 15
	p.PeriodSeconds = 10
	p.FailureThreshold = 8
	if tune != nil {
		applyProbeSpec(p, tune.Liveness)
	}
	return p
}

func readinessProbe(path string, port int32, tune *kamajiv1alpha1.ControlPlaneProbes) *corev1.Probe {
	p := httpsProbe(path, port)
	p.TimeoutSeconds = 15
	p.PeriodSeconds = 1
	p.FailureThreshold = 3
	if tune != nil {
		applyProbeSpec(p, tune.Readiness)
	}
	return p
}

// startupProbe gives a slow first start (datastore migration, large caches) four minutes
// before the liveness probe may kill the container.
func startupProbe(path string, port int32, tune *kamajiv1alpha1.ControlPlaneProbes) *corev1.Probe {
	p := httpsProbe(path, port)
	p.InitialDelaySeconds = 10
	p.TimeoutSeconds = 15
	p.PeriodSeconds = 10
	p.FailureThreshold = 24
	if tune != nil {
		applyProbeSpec(p, tune.StartupProbe)
	}
	return p
}

// httpsProbe targets the pod IP (no Host): that is where the kubelet can reach, which is why
// every component binds beyond loopback.
func httpsProbe(path string, port int32) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
		Path:   path,
		Port:   intstr.FromInt32(port),
		Scheme: corev1.URISchemeHTTPS,
	}}}
}

func applyProbeSpec(p *corev1.Probe, s *kamajiv1alpha1.ProbeSpec) {
	if s == nil {
		return
	}
	set := func(dst *int32, src *int32) {
		if src != nil {
			*dst = *src
		}
	}
	set(&p.InitialDelaySeconds, s.InitialDelaySeconds)
	set(&p.TimeoutSeconds, s.TimeoutSeconds)
	set(&p.PeriodSeconds, s.PeriodSeconds)
	set(&p.SuccessThreshold, s.SuccessThreshold)
	set(&p.FailureThreshold, s.FailureThreshold)
}
