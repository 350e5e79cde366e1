package controlplane

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// podSpec assembles the containers and volumes and applies the pod-level settings of
// spec.controlPlane.deployment, all deep-copied.
func podSpec(in Input) corev1.PodSpec {
	dep := &in.TCP.Spec.ControlPlane.Deployment
	img := componentImages(dep.RegistrySettings, in.TCP.Spec.Kubernetes.Version)

	// Ours first, in a fixed order; then addons sorted by name (their order is the caller's
	// iteration order, not a meaning); then the user's, in the user's order.
	containers := []corev1.Container{
		apiServerContainer(in, img.apiServer),
		controllerManagerContainer(in, img.controllerManager),
		schedulerContainer(in, img.scheduler),
	}
	if in.Kine != nil {
		containers = append(containers, kineContainer(in))
	}
	containers = append(containers, copyContainers(in.Additions.Containers, true)...)
	containers = append(containers, copyContainers(dep.AdditionalContainers, false)...)

	volumes := coreVolumes(in)
	volumes = append(volumes, storageVolumes(in)...)
	volumes = append(volumes, copyVolumes(in.Additions.Volumes, true)...)
	volumes = append(volumes, copyVolumes(dep.AdditionalVolumes, false)...)

	ps := corev1.PodSpec{
		InitContainers:            copyContainers(dep.AdditionalInitContainers, false),
		Containers:                containers,
		Volumes:                   volumes,
		NodeSelector:              merge(dep.NodeSelector, nil),
		Affinity:                  dep.Affinity.DeepCopy(),
		TopologySpreadConstraints: spreadConstraints(dep.TopologySpreadConstraints, in.Labels),
		ServiceAccountName:        dep.ServiceAccountName,
		SecurityContext:           dep.PodSecurityContext.DeepCopy(),
	}
	if dep.AutomountServiceAccountToken != nil {
		ps.AutomountServiceAccountToken = ptr.To(*dep.AutomountServiceAccountToken)
	}
	for i := range dep.Tolerations {
		ps.Tolerations = append(ps.Tolerations, *dep.Tolerations[i].DeepCopy())
	}
	if dep.RuntimeClassName != "" {
		ps.RuntimeClassName = ptr.To(dep.RuntimeClassName)
	}
	if len(ps.InitContainers) == 0 {
		ps.InitContainers = nil
	}
	return ps
}

// spreadConstraints defaults a missing labelSelector to the control-plane pods: without one a
// constraint counts no pods and spreads nothing, which is never what a user means.
func spreadConstraints(in []corev1.TopologySpreadConstraint, selector map[string]string) []corev1.TopologySpreadConstraint {
	var out []corev1.TopologySpreadConstraint
	for i := range in {
		c := *in[i].DeepCopy()
		if c.LabelSelector == nil {
			c.LabelSelector = &metav1.LabelSelector{MatchLabels: merge(selector, nil)}
		}
		out = append(out, c)
	}
	return out
}

func copyContainers(in []corev1.Container, sortByName bool) []corev1.Container {
	out := make([]corev1.Container, 0, len(in))
	for i := range in {
		out = append(out, *in[i].DeepCopy())
	}
	if sortByName {
		slices.SortStableFunc(out, func(a, b corev1.Container) int { return strings.Compare(a.Name, b.Name) })
	}
	return out
}

// checkPod catches what the API server would reject anyway, but naming the culprit: clashing
// container or volume names (a user's or an addon's against ours) and mounts of no volume.
func checkPod(ps *corev1.PodSpec) error {
	var errs []error
	volumes := map[string]bool{}
	for _, v := range ps.Volumes {
		if volumes[v.Name] {
			errs = append(errs, fmt.Errorf("volume name %q is used twice", v.Name))
		}
		volumes[v.Name] = true
	}
	containers := map[string]bool{}
	for _, list := range [][]corev1.Container{ps.InitContainers, ps.Containers} {
		for _, c := range list {
			if containers[c.Name] {
				errs = append(errs, fmt.Errorf("container name %q is used twice", c.Name))
			}
			containers[c.Name] = true
			for _, m := range c.VolumeMounts {
				if !volumes[m.Name] {
					errs = append(errs, fmt.Errorf("container %q mounts volume %q, which does not exist", c.Name, m.Name))
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("controlplane: invalid pod: %w", err)
	}
	return nil
}
