package controlplane

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// probeTuning is what spec.controlPlane.deployment.probes says about one component's probes:
// for each probe, the settings to apply over kubeadm's timings, lowest precedence first (the
// global block, then the component's own).
type probeTuning struct {
	liveness, readiness, startup []*kamajiv1alpha1.ProbeSpec
}

// Pickers of a component's block in spec.controlPlane.deployment.probes.
func apiServerProbes(p *kamajiv1alpha1.ControlPlaneProbes) *kamajiv1alpha1.ComponentProbes {
	return p.APIServer
}

func controllerManagerProbes(p *kamajiv1alpha1.ControlPlaneProbes) *kamajiv1alpha1.ComponentProbes {
	return p.ControllerManager
}

func schedulerProbes(p *kamajiv1alpha1.ControlPlaneProbes) *kamajiv1alpha1.ComponentProbes {
	return p.Scheduler
}

// tuning layers a component's probe settings over the global ones: they merge field by field,
// the component's winning.
func tuning(p *kamajiv1alpha1.ControlPlaneProbes, component func(*kamajiv1alpha1.ControlPlaneProbes) *kamajiv1alpha1.ComponentProbes) probeTuning {
	var t probeTuning
	if p == nil {
		return t
	}
	t.liveness = append(t.liveness, p.Liveness)
	t.readiness = append(t.readiness, p.Readiness)
	t.startup = append(t.startup, p.StartupProbe)
	if c := component(p); c != nil {
		t.liveness = append(t.liveness, c.Liveness)
		t.readiness = append(t.readiness, c.Readiness)
		t.startup = append(t.startup, c.StartupProbe)
	}
	return t
}

// Probe timings are kubeadm's for its static control-plane pods, but the startup and readiness
// probes'; spec.controlPlane.deployment.probes overrides them field by field.
func livenessProbe(path string, port int32, tune probeTuning) *corev1.Probe {
	p := httpsProbe(path, port)
	p.InitialDelaySeconds = 10
	p.TimeoutSeconds = 15
	p.PeriodSeconds = 10
	p.FailureThreshold = 8
	applyProbeSpecs(p, tune.liveness)
	return p
}

// readinessProbe runs every 5 s, where kubeadm's runs every second: each probe is a new TLS
// connection (CPU on both sides) and a read from the datastore (the apiserver's etcd check), 60
// reads a minute from an otherwise idle tenant (docs/operations.md, Idle tenants). It does not
// slow a start: the apiserver's startup probe asks the same /readyz, and the kubelet probes
// readiness at once when the startup probe passes. What it costs: an apiserver whose datastore
// fails leaves its Service's endpoints after 15 s rather than 3 s, and returns to them up to 5 s
// after it recovers.
func readinessProbe(path string, port int32, tune probeTuning) *corev1.Probe {
	p := httpsProbe(path, port)
	p.TimeoutSeconds = 15
	p.PeriodSeconds = 5
	p.FailureThreshold = 3
	applyProbeSpecs(p, tune.readiness)
	return p
}

// startupProbe gives a slow first start (datastore migration, large caches) four minutes
// before the liveness probe may kill the container, as kubeadm's does, but polls every second
// from the start instead of every 10 s after 10 s: readiness is not probed before the startup
// probe passes, and an apiserver that answers after 3 s would otherwise wait until the 10th,
// which every start, upgrade and migration's write freeze would pay.
func startupProbe(path string, port int32, tune probeTuning) *corev1.Probe {
	p := httpsProbe(path, port)
	p.TimeoutSeconds = 15
	p.PeriodSeconds = 1
	p.FailureThreshold = 240
	applyProbeSpecs(p, tune.startup)
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

func applyProbeSpecs(p *corev1.Probe, specs []*kamajiv1alpha1.ProbeSpec) {
	for _, s := range specs {
		applyProbeSpec(p, s)
	}
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
