package controlplane

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/netprofile"
)

// defaultPreferredAddressTypes is kubeadm's and the CRD's default.
var defaultPreferredAddressTypes = []kamajiv1alpha1.KubeletPreferredAddressType{"InternalIP", "ExternalIP", "Hostname"}

// podIPEnv exposes the pod's own IP for --advertise-address when the spec gives none.
const podIPEnv = "POD_IP"

// APIServerGOGC is the Go garbage collector's target for kube-apiserver. Measured on an idle
// tenant (make bench): its heap in use goes from about 160 to 130 MB and its resident memory
// from about 285 to 242 MB; the price is more GC CPU under load and at start (a bare start
// used about 0.6 s more CPU and answered up to 0.35 s later, docs/operations.md).
const APIServerGOGC = "50"

// apiServerContainer runs kube-apiserver with kubeadm's flags. spec.writePermissions is
// deliberately not read: write blocking is enforced outside the Deployment, so toggling it
// must not roll the control plane.
func apiServerContainer(in Input, image string) corev1.Container {
	spec := &in.TCP.Spec
	dep := &spec.ControlPlane.Deployment
	np := spec.NetworkProfile

	args := []string{
		"--allow-privileged=true",
		"--authorization-mode=Node,RBAC",
		"--client-ca-file=" + clientCA(in).path,
		"--enable-bootstrap-token-auth=true",
		"--kubelet-client-certificate=" + fileKubeletClientCert.path,
		"--kubelet-client-key=" + fileKubeletClientKey.path,
		"--kubelet-preferred-address-types=" + preferredAddressTypes(spec.Kubernetes.Kubelet.PreferredAddressTypes),
		"--proxy-client-cert-file=" + fileFrontProxyClientCert.path,
		"--proxy-client-key-file=" + fileFrontProxyClientKey.path,
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-client-ca-file=" + fileFrontProxyCACert.path,
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-username-headers=X-Remote-User",
		"--secure-port=" + strconv.Itoa(int(netprofile.Port(np))),
		"--service-account-issuer=https://kubernetes.default.svc." + netprofile.ClusterDomain(np),
		"--service-account-key-file=" + fileSAPublicKey.path,
		"--service-account-signing-key-file=" + fileSAPrivateKey.path,
		"--service-cluster-ip-range=" + serviceCIDRs(np),
		// Not kubeadm's: on SIGTERM the apiserver answers new requests with 429 and Retry-After
		// until those in flight are done, then exits within about 2 s. Without it, one open
		// watch holds the exit for a minute, past the pod's 30 s grace: a replica being
		// replaced (rollout, migration, sleep) lingers until it is killed.
		"--shutdown-send-retry-after=true",
		"--tls-cert-file=" + fileAPIServerCert.path,
		"--tls-private-key-file=" + fileAPIServerKey.path,
	}
	if plugins := spec.Kubernetes.AdmissionControllers; len(plugins) > 0 {
		names := make([]string, len(plugins))
		for i, p := range plugins {
			names[i] = string(p)
		}
		// Given order kept: it is the user's, and the apiserver runs plugins in its own order anyway.
		args = append(args, "--enable-admission-plugins="+strings.Join(names, ","))
	}

	// The advertised address is what the tenant's "kubernetes" Service endpoints point at.
	// Without one in the spec, each replica advertises its own pod IP, as a kubeadm node does.
	env := []corev1.EnvVar{{Name: "GOGC", Value: apiServerGOGC(in)}}
	advertise := or(np.AdvertiseAddress, np.Address)
	if advertise == "" {
		env = append(env, corev1.EnvVar{Name: podIPEnv, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.podIP"},
		}})
		advertise = "$(" + podIPEnv + ")"
	}
	args = append(args, "--advertise-address="+advertise)
	args = append(args, storageArgs(in)...)

	// Precedence: core < profile < addons < user.
	args = MergeArgs(MergeArgs(MergeArgs(forMinor(in, APIServerContainer, args), profileAPIServerArgs(in)), in.Additions.APIServerArgs), extraArgs(dep).APIServer)
	port := portArg(args, "secure-port", netprofile.Port(np))
	probes := tuning(dep.Probes, apiServerProbes)

	c := corev1.Container{
		Name:    APIServerContainer,
		Image:   image,
		Command: []string{"kube-apiserver"},
		Args:    args,
		Env:     env,
		Ports: []corev1.ContainerPort{{
			Name:          APIServerPortName,
			ContainerPort: port,
			Protocol:      corev1.ProtocolTCP,
		}},
		LivenessProbe:  livenessProbe("/livez", port, probes),
		ReadinessProbe: readinessProbe("/readyz", port, probes),
		// /readyz rather than kubeadm's /livez: the two pass together in a start, and once the
		// container has started the kubelet probes readiness at once; were /readyz to lag, the
		// pod would wait a whole readiness period to be Ready.
		StartupProbe: startupProbe("/readyz", port, probes),
		VolumeMounts: append(mounts(caFiles(in,
			fileAPIServerCert, fileAPIServerKey,
			fileKubeletClientCert, fileKubeletClientKey,
			fileFrontProxyCACert,
			fileFrontProxyClientCert, fileFrontProxyClientKey,
			fileSAPublicKey, fileSAPrivateKey,
		)...), storageMounts(in)...),
	}
	extra := append(copyMounts(in.Additions.APIServerVolumeMounts), additionalMounts(dep).APIServer...)
	finishContainer(&c, resources(dep).APIServer, securityContext(dep, apiServerSecurityContext), extra)
	return c
}

func preferredAddressTypes(types []kamajiv1alpha1.KubeletPreferredAddressType) string {
	if len(types) == 0 {
		types = defaultPreferredAddressTypes
	}
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = string(t)
	}
	return strings.Join(names, ",")
}
