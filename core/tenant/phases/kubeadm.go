package phases

import (
	"net"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// clusterConfiguration is the subset of kubeadm.k8s.io/v1beta4 ClusterConfiguration the core
// writes: what `kubeadm join`, `kubeadm upgrade` and addons read from the cluster. Field names
// and JSON tags are kubeadm's.
type clusterConfiguration struct {
	APIVersion           string     `json:"apiVersion"`
	Kind                 string     `json:"kind"`
	ClusterName          string     `json:"clusterName,omitempty"`
	KubernetesVersion    string     `json:"kubernetesVersion,omitempty"`
	ControlPlaneEndpoint string     `json:"controlPlaneEndpoint,omitempty"`
	CertificatesDir      string     `json:"certificatesDir,omitempty"`
	ImageRepository      string     `json:"imageRepository,omitempty"`
	Networking           networking `json:"networking"`
	APIServer            apiServer  `json:"apiServer"`
	Etcd                 etcd       `json:"etcd"`
	DNS                  struct{}   `json:"dns"`
	Proxy                struct{}   `json:"proxy"`
	ControllerManager    struct{}   `json:"controllerManager"`
	Scheduler            struct{}   `json:"scheduler"`
	EncryptionAlgorithm  string     `json:"encryptionAlgorithm,omitempty"`
}

type networking struct {
	DNSDomain     string `json:"dnsDomain,omitempty"`
	ServiceSubnet string `json:"serviceSubnet,omitempty"`
	PodSubnet     string `json:"podSubnet,omitempty"`
}

type apiServer struct {
	CertSANs []string `json:"certSANs,omitempty"`
}

type etcd struct {
	External *externalEtcd `json:"external,omitempty"`
}

type externalEtcd struct {
	Endpoints []string `json:"endpoints"`
	CAFile    string   `json:"caFile"`
	CertFile  string   `json:"certFile"`
	KeyFile   string   `json:"keyFile"`
}

// ClusterConfiguration renders kube-system/kubeadm-config's ClusterConfiguration.
func ClusterConfiguration(in Input) ([]byte, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	tcp := in.TCP
	cfg := clusterConfiguration{
		APIVersion:           "kubeadm.k8s.io/v1beta4",
		Kind:                 "ClusterConfiguration",
		ClusterName:          tcp.Name,
		KubernetesVersion:    tcp.Spec.Kubernetes.Version,
		ControlPlaneEndpoint: in.Endpoint,
		CertificatesDir:      CertificatesDir,
		ImageRepository:      DefaultImageRepository,
		Networking: networking{
			DNSDomain:     clusterDomain(tcp),
			ServiceSubnet: joinCIDRs(serviceCIDRs(tcp)),
			PodSubnet:     joinCIDRs(podCIDRs(tcp)),
		},
		APIServer: apiServer{CertSANs: certSANs(in)},
	}
	if len(in.EtcdServers) > 0 {
		cfg.Etcd.External = &externalEtcd{
			Endpoints: in.EtcdServers,
			CAFile:    CertificatesDir + "/etcd/ca.crt",
			CertFile:  CertificatesDir + "/apiserver-etcd-client.crt",
			KeyFile:   CertificatesDir + "/apiserver-etcd-client.key",
		}
	}
	return yaml.Marshal(cfg)
}

// certSANs are the spec's extra SANs and the endpoint's host.
func certSANs(in Input) []string {
	out := append([]string(nil), in.TCP.Spec.NetworkProfile.CertSANs...)
	if host, _, err := net.SplitHostPort(in.Endpoint); err == nil {
		seen := false
		for _, s := range out {
			seen = seen || s == host
		}
		if !seen {
			out = append(out, host)
		}
	}
	return out
}

// KubeadmConfig is kubeadm's upload-config/kubeadm phase: the ClusterConfiguration in
// kube-system/kubeadm-config, readable by bootstrap tokens and nodes.
func KubeadmConfig(in Input) ([]client.Object, error) {
	cc, err := ClusterConfiguration(in)
	if err != nil {
		return nil, err
	}
	const ph = PhaseKubeadmConfig
	out := []client.Object{&corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta(ph, KubeadmConfigConfigMap, metav1.NamespaceSystem),
		Data:       map[string]string{ClusterConfigurationKey: string(cc)},
	}}
	return append(out, configMapReader(ph, metav1.NamespaceSystem, NodesKubeadmConfigRole, KubeadmConfigConfigMap,
		group(NodeBootstrapTokenAuthGroup), group(NodesGroup))...), nil
}
