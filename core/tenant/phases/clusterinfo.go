package phases

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ClusterInfoKubeconfig is the kubeconfig of kube-public/cluster-info exactly as kubeadm writes
// it: one cluster named "" with the public endpoint and the CA, nothing else. Token discovery
// verifies its JWS signature (added by the tenant's bootstrap signer) over these bytes.
func ClusterInfoKubeconfig(in Input) ([]byte, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	if len(in.CACert) == 0 {
		return nil, fmt.Errorf("phases: no CA certificate for cluster-info")
	}
	server := in.Endpoint
	if !strings.Contains(server, "://") {
		server = "https://" + server
	}
	return clientcmd.Write(clientcmdapi.Config{
		Clusters: map[string]*clientcmdapi.Cluster{"": {Server: server, CertificateAuthorityData: in.CACert}},
	})
}

// ClusterInfo is the cluster-info part of kubeadm's bootstrap-token phase: the ConfigMap and a
// Role and RoleBinding that let anonymous users read it (nodes discover the cluster with it
// before they have credentials).
func ClusterInfo(in Input) ([]client.Object, error) {
	kc, err := ClusterInfoKubeconfig(in)
	if err != nil {
		return nil, err
	}
	const ph = PhaseClusterInfo
	out := []client.Object{&corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta(ph, ClusterInfoConfigMap, metav1.NamespacePublic),
		Data:       map[string]string{ClusterInfoKubeconfigKey: string(kc)},
	}}
	return append(out, configMapReader(ph, metav1.NamespacePublic, ClusterInfoRole, ClusterInfoConfigMap, user(AnonymousUser))...), nil
}
