package controlplane

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/sdk/addon"
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

// Pickers of a container's own security context in spec.controlPlane.deployment.containerSecurityContexts.
func apiServerSecurityContext(c *kamajiv1alpha1.ControlPlaneContainerSecurityContexts) *corev1.SecurityContext {
	return c.APIServer
}

func controllerManagerSecurityContext(c *kamajiv1alpha1.ControlPlaneContainerSecurityContexts) *corev1.SecurityContext {
	return c.ControllerManager
}

func schedulerSecurityContext(c *kamajiv1alpha1.ControlPlaneContainerSecurityContexts) *corev1.SecurityContext {
	return c.Scheduler
}

// securityContext is the container's own security context when containerSecurityContexts
// gives one (it replaces the shared one as a whole), else the shared securityContext.
func securityContext(dep *kamajiv1alpha1.DeploymentSpec, own func(*kamajiv1alpha1.ControlPlaneContainerSecurityContexts) *corev1.SecurityContext) *corev1.SecurityContext {
	if dep.ContainerSecurityContexts != nil {
		if sc := own(dep.ContainerSecurityContexts); sc != nil {
			return sc
		}
	}
	return dep.SecurityContext
}

// finishContainer applies what every container of ours gets from the spec: its resources (and
// with a memory limit, GOMEMLIMIT), its security context and the user's extra mounts (after
// ours, so ours keep their order). Everything is copied: the Deployment must not alias the
// TenantControlPlane.
func finishContainer(c *corev1.Container, res *corev1.ResourceRequirements, sc *corev1.SecurityContext, extra []corev1.VolumeMount) {
	if res != nil {
		c.Resources = *res.DeepCopy()
	}
	if limit, ok := GoMemLimit(c.Resources); ok {
		c.Env = append(c.Env, corev1.EnvVar{Name: "GOMEMLIMIT", Value: strconv.FormatInt(limit, 10)})
	}
	c.SecurityContext = sc.DeepCopy()
	// A component that exits with an error writes no termination message: the kubelet then puts
	// the end of its log in the container's status, where the TCP's status reads why it crashed
	// (Kubernetes binaries print a flag error last, after their usage).
	c.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	c.VolumeMounts = append(c.VolumeMounts, copyMounts(extra)...)
	if len(c.VolumeMounts) == 0 {
		c.VolumeMounts = nil
	}
	if len(c.Env) == 0 {
		c.Env = nil
	}
}

// GoMemLimit is GOMEMLIMIT for a container with these resources: addon.GoMemLimitPercent of its
// memory limit, rounded down; false without a (positive) memory limit. Every component of ours
// is a Go program (kube-apiserver, the controller manager, the scheduler, kine).
func GoMemLimit(res corev1.ResourceRequirements) (int64, bool) {
	q, ok := res.Limits[corev1.ResourceMemory]
	if !ok {
		return 0, false
	}
	return addon.GoMemLimit(q.Value())
}
