package controlplane

import (
	corev1 "k8s.io/api/core/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// The optional per-component blocks of the deployment spec, nil-safe.

func extraArgs(dep *kamajiv1alpha1.DeploymentSpec) kamajiv1alpha1.ControlPlaneExtraArgs {
	if dep.ExtraArgs == nil {
		return kamajiv1alpha1.ControlPlaneExtraArgs{}
	}
	return *dep.ExtraArgs
}

func resources(dep *kamajiv1alpha1.DeploymentSpec) kamajiv1alpha1.ControlPlaneComponentsResources {
	if dep.Resources == nil {
		return kamajiv1alpha1.ControlPlaneComponentsResources{}
	}
	return *dep.Resources
}

func additionalMounts(dep *kamajiv1alpha1.DeploymentSpec) kamajiv1alpha1.AdditionalVolumeMounts {
	if dep.AdditionalVolumeMounts == nil {
		return kamajiv1alpha1.AdditionalVolumeMounts{}
	}
	return *dep.AdditionalVolumeMounts
}

// finishContainer applies what every container of ours gets from the spec: its resources, the
// shared security context and the user's extra mounts (after ours, so ours keep their order).
// Everything is copied: the Deployment must not alias the TenantControlPlane.
func finishContainer(c *corev1.Container, res *corev1.ResourceRequirements, sc *corev1.SecurityContext, extra []corev1.VolumeMount) {
	if res != nil {
		c.Resources = *res.DeepCopy()
	}
	c.SecurityContext = sc.DeepCopy()
	c.VolumeMounts = append(c.VolumeMounts, copyMounts(extra)...)
	if len(c.VolumeMounts) == 0 {
		c.VolumeMounts = nil
	}
	if len(c.Env) == 0 {
		c.Env = nil
	}
}
