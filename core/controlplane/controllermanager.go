package controlplane

import (
	corev1 "k8s.io/api/core/v1"
)

const controllerManagerPort int32 = 10257

// controllerManagerContainer runs kube-controller-manager with kubeadm's flags, except
// --bind-address: kubeadm binds 127.0.0.1 because its static pods share the host network, but
// here the pod has its own network namespace and the kubelet probes the pod IP, so loopback
// would fail every probe. 0.0.0.0 exposes the port on the pod IP only; it serves TLS, and only
// the health endpoints answer without authentication.
func controllerManagerContainer(in Input, image string) corev1.Container {
	spec := &in.TCP.Spec
	dep := &spec.ControlPlane.Deployment
	np := spec.NetworkProfile

	args := MergeArgs(MergeArgs(forMinor(in, ControllerManagerContainer, []string{
		"--allocate-node-cidrs=true",
		"--authentication-kubeconfig=" + fileControllerManagerConf.path,
		"--authorization-kubeconfig=" + fileControllerManagerConf.path,
		"--bind-address=0.0.0.0",
		"--client-ca-file=" + clientCA(in).path,
		"--cluster-cidr=" + podCIDRs(np),
		"--cluster-name=" + in.TCP.Name,
		"--cluster-signing-cert-file=" + fileCACert.path,
		"--cluster-signing-key-file=" + fileCAKey.path,
		"--controllers=*,bootstrapsigner,tokencleaner",
		"--kubeconfig=" + fileControllerManagerConf.path,
		"--leader-elect=true",
		"--requestheader-client-ca-file=" + fileFrontProxyCACert.path,
		"--root-ca-file=" + clientCA(in).path,
		"--service-account-private-key-file=" + fileSAPrivateKey.path,
		"--service-cluster-ip-range=" + serviceCIDRs(np),
		"--use-service-account-credentials=true",
	}), profileLeaderElectionArgs(in)), extraArgs(dep).ControllerManager)
	port := portArg(args, "secure-port", controllerManagerPort)
	probes := tuning(dep.Probes, controllerManagerProbes)

	c := corev1.Container{
		Name:          ControllerManagerContainer,
		Image:         image,
		Command:       []string{"kube-controller-manager"},
		Args:          args,
		LivenessProbe: livenessProbe("/healthz", port, probes),
		StartupProbe:  startupProbe("/healthz", port, probes),
		// The CA key signs kubelet certificates (CSR signing); the service-account key signs
		// the tokens of the controllers' own service accounts.
		VolumeMounts: mounts(caFiles(in, fileCAKey, fileFrontProxyCACert, fileSAPrivateKey, fileControllerManagerConf)...),
		Env:          profileGoEnv(in, resources(dep).ControllerManager),
	}
	finishContainer(&c, resources(dep).ControllerManager, securityContext(dep, controllerManagerSecurityContext), additionalMounts(dep).ControllerManager)
	return c
}
