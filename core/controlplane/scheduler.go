package controlplane

import (
	corev1 "k8s.io/api/core/v1"
)

const schedulerPort int32 = 10259

// schedulerContainer runs kube-scheduler. It needs only its kubeconfig: client certificates
// are verified against the CA the apiserver publishes, so no PKI file is mounted. It binds
// 0.0.0.0 for the same reason as the controller-manager (probes reach the pod IP).
func schedulerContainer(in Input, image string) corev1.Container {
	dep := &in.TCP.Spec.ControlPlane.Deployment

	args := MergeArgs(MergeArgs(forMinor(in, SchedulerContainer, []string{
		"--authentication-kubeconfig=" + fileSchedulerConf.path,
		"--authorization-kubeconfig=" + fileSchedulerConf.path,
		"--bind-address=0.0.0.0",
		"--kubeconfig=" + fileSchedulerConf.path,
		"--leader-elect=true",
	}), profileLeaderElectionArgs(in)), extraArgs(dep).Scheduler)
	port := portArg(args, "secure-port", schedulerPort)
	probes := tuning(dep.Probes, schedulerProbes)

	c := corev1.Container{
		Name:          SchedulerContainer,
		Image:         image,
		Command:       []string{"kube-scheduler"},
		Args:          args,
		LivenessProbe: livenessProbe("/healthz", port, probes),
		StartupProbe:  startupProbe("/healthz", port, probes),
		VolumeMounts:  mounts(fileSchedulerConf),
		Env:           profileGoEnv(in, resources(dep).Scheduler),
	}
	finishContainer(&c, resources(dep).Scheduler, securityContext(dep, schedulerSecurityContext), additionalMounts(dep).Scheduler)
	return c
}
