package konnectivity

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/openhcp/kamaji/sdk/addon"
)

// The contract with the core for the control-plane pod. The sidecar mounts two Secrets of the
// TenantControlPlane's namespace, which the core creates (the plugin only names them):
//
//   - CertificateSecretName(tcp), keys CertificateKey and PrivateKeyKey: the konnectivity-server
//     certificate signed by the tenant CA, CN system:konnectivity-server, server and client
//     usages, valid for the control-plane endpoint the agents dial (the core's
//     tenantpki.EnsureKonnectivity with the apiserver's SANs). The server presents it to the
//     agents (--cluster-cert/--cluster-key), who verify it with the tenant CA.
//   - KubeconfigSecretName(tcp), key KubeconfigKey: a kubeconfig for user
//     system:konnectivity-server (that certificate as client certificate) reaching the tenant
//     apiserver of the same pod, e.g. https://localhost:<apiserver port>; the server uses it to
//     review the agents' tokens.
//
// Their files appear in the sidecar at CertificatePath, PrivateKeyPath and KubeconfigPath.
const (
	ServerContainerName = "konnectivity-server"
	ServicePortName     = "konnectivity-server"

	CertificateKey = "konnectivity-server.crt"
	PrivateKeyKey  = "konnectivity-server.key"
	KubeconfigKey  = "konnectivity-server.conf"

	CertificatePath = "/etc/kubernetes/pki/konnectivity-server.crt"
	PrivateKeyPath  = "/etc/kubernetes/pki/konnectivity-server.key"
	KubeconfigPath  = "/etc/kubernetes/konnectivity-server.conf"

	// SocketDir holds the server's socket, on an emptyDir shared with kube-apiserver.
	SocketDir  = "/run/konnectivity"
	SocketPath = SocketDir + "/konnectivity-server.socket"

	// EgressSelectorConfigPath is where kube-apiserver reads EgressSelectorConfiguration.
	EgressSelectorConfigPath = "/etc/kubernetes/konnectivity/egress-selector-configuration.yaml"

	// Volume names in the control-plane pod.
	VolumeSocket      = "konnectivity-uds"
	VolumeCertificate = "pki-konnectivity"
	VolumeKubeconfig  = "kubeconfig-konnectivity"
)

// CertificateSecretName is the Secret of the konnectivity-server certificate (Kamaji's name).
func CertificateSecretName(tcp string) string { return tcp + "-konnectivity-certificate" }

// KubeconfigSecretName is the Secret of the konnectivity-server kubeconfig (Kamaji's name).
func KubeconfigSecretName(tcp string) string { return tcp + "-konnectivity-kubeconfig" }

// secretMode lets the sidecar read its Secrets: the upstream image runs as uid 65532, and the
// pod may have no fsGroup. Mode bits isolate nothing between the containers of one pod (any of
// them could mount the volume), so nothing is lost against the core's 0440.
const secretMode int32 = 0o444

// serverArgs are the sidecar's flags before extraArgs: the apiserver side on the UDS (port 0,
// which konnectivity-server requires with --uds-name), the agent side on port with the
// konnectivity certificate, agents authenticated by their projected tokens.
func serverArgs(port int32) []string {
	return []string{
		"--uds-name=" + SocketPath,
		"--delete-existing-uds-file=true",
		"--cluster-cert=" + CertificatePath,
		"--cluster-key=" + PrivateKeyPath,
		"--mode=grpc",
		"--server-port=0",
		"--agent-port=" + strconv.Itoa(int(port)),
		"--admin-port=" + strconv.Itoa(adminPort),
		"--health-port=" + strconv.Itoa(healthPort),
		"--agent-namespace=" + namespace,
		"--agent-service-account=" + AgentName,
		"--kubeconfig=" + KubeconfigPath,
		"--authentication-audience=" + Audience,
		"--proxy-strategies=destHost,default",
	}
}

// serverContainer is the sidecar. konnectivity-server is a Go program: with a memory limit it
// gets GOMEMLIMIT, as the core's own components do, so its collector works harder near the
// limit instead of the kernel killing the container at it.
func serverContainer(in input) corev1.Container {
	var env []corev1.EnvVar
	if q, ok := in.resources.Limits[corev1.ResourceMemory]; ok {
		if limit, ok := addon.GoMemLimit(q.Value()); ok {
			env = []corev1.EnvVar{{Name: "GOMEMLIMIT", Value: strconv.FormatInt(limit, 10)}}
		}
	}
	return corev1.Container{
		Name:            ServerContainerName,
		Image:           in.serverImage,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{"/proxy-server"},
		Args:            in.serverArgs,
		Ports: []corev1.ContainerPort{
			{Name: "konn-agent", ContainerPort: in.port, Protocol: corev1.ProtocolTCP},
			{Name: "konn-health", ContainerPort: in.serverHealth, Protocol: corev1.ProtocolTCP},
		},
		LivenessProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/healthz", Port: intstr.FromInt32(in.serverHealth), Scheme: corev1.URISchemeHTTP,
			}},
			InitialDelaySeconds: 10, TimeoutSeconds: 15, FailureThreshold: 3,
		},
		Env:       env,
		Resources: in.resources,
		VolumeMounts: []corev1.VolumeMount{
			{Name: VolumeSocket, MountPath: SocketDir},
			{Name: VolumeCertificate, MountPath: CertificatePath, SubPath: CertificateKey, ReadOnly: true},
			{Name: VolumeCertificate, MountPath: PrivateKeyPath, SubPath: PrivateKeyKey, ReadOnly: true},
			{Name: VolumeKubeconfig, MountPath: KubeconfigPath, SubPath: KubeconfigKey, ReadOnly: true},
		},
	}
}

func serverVolumes(in input) []corev1.Volume {
	mode := secretMode
	return []corev1.Volume{
		{Name: VolumeSocket, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: VolumeCertificate, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName:  CertificateSecretName(in.tenant),
			Items:       []corev1.KeyToPath{{Key: CertificateKey, Path: CertificateKey}, {Key: PrivateKeyKey, Path: PrivateKeyKey}},
			DefaultMode: &mode,
		}}},
		{Name: VolumeKubeconfig, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName:  KubeconfigSecretName(in.tenant),
			Items:       []corev1.KeyToPath{{Key: KubeconfigKey, Path: KubeconfigKey}},
			DefaultMode: &mode,
		}}},
	}
}

// controlPlane is what the core adds to the control-plane pod and Service: the sidecar and its
// volumes, the Service port, and for kube-apiserver the egress selector configuration (a file
// the core mounts at EgressSelectorConfigPath), the socket directory and the flag naming the
// file. The flag and the file travel together: kube-apiserver does not start with one alone.
func controlPlane(in input) (*addon.ControlPlaneAdditions, error) {
	cp := &addon.ControlPlaneAdditions{
		ServicePorts:       []addon.ServicePort{{Name: ServicePortName, Port: in.port, TargetPort: in.port, Protocol: "TCP"}},
		APIServerExtraArgs: APIServerArgs(),
		Files:              []addon.File{{Path: EgressSelectorConfigPath, Content: EgressSelectorConfiguration()}},
	}
	for _, m := range APIServerVolumeMounts() {
		b, err := addon.EncodeObject(m)
		if err != nil {
			return nil, err
		}
		cp.APIServerVolumeMounts = append(cp.APIServerVolumeMounts, b)
	}
	c, err := addon.EncodeObject(serverContainer(in))
	if err != nil {
		return nil, err
	}
	cp.Containers = [][]byte{c}
	for _, v := range serverVolumes(in) {
		b, err := addon.EncodeObject(v)
		if err != nil {
			return nil, err
		}
		cp.Volumes = append(cp.Volumes, b)
	}
	return cp, nil
}

// EgressSelectorConfiguration is kube-apiserver's --egress-selector-config-file: traffic to the
// cluster (nodes, pods, services) goes through konnectivity-server's socket over gRPC; the
// control-plane and etcd egress stay direct.
func EgressSelectorConfiguration() []byte {
	return []byte(`apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: GRPC
    transport:
      uds:
        udsName: ` + SocketPath + `
`)
}

// APIServerArgs are the flags kube-apiserver needs to use the tunnel.
func APIServerArgs() []string {
	return []string{"--egress-selector-config-file=" + EgressSelectorConfigPath}
}

// APIServerVolumeMounts give kube-apiserver the server's socket directory.
func APIServerVolumeMounts() []corev1.VolumeMount {
	return []corev1.VolumeMount{{Name: VolumeSocket, MountPath: SocketDir}}
}
