package phases

import (
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/openhcp/kamaji/core/kubeversion"
	"github.com/openhcp/kamaji/core/netprofile"
)

// clusterConfiguration is the subset of kubeadm's ClusterConfiguration the core writes: what
// `kubeadm join`, `kubeadm upgrade` and addons read from the cluster. Field names and JSON tags
// are kubeadm's, common to v1beta3 and v1beta4 but for proxy (v1beta4 only).
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
	Proxy                *struct{}  `json:"proxy,omitempty"`
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
	apiVersion := kubeadmAPIVersion(tcp.Spec.Kubernetes.Version)
	cfg := clusterConfiguration{
		APIVersion:           apiVersion,
		Kind:                 "ClusterConfiguration",
		ClusterName:          tcp.Name,
		KubernetesVersion:    tcp.Spec.Kubernetes.Version,
		ControlPlaneEndpoint: in.Endpoint,
		CertificatesDir:      CertificatesDir,
		ImageRepository:      DefaultImageRepository,
		Networking: networking{
			DNSDomain:     netprofile.ClusterDomain(tcp.Spec.NetworkProfile),
			ServiceSubnet: strings.Join(netprofile.ServiceRanges(tcp.Spec.NetworkProfile), ","),
			PodSubnet:     strings.Join(netprofile.PodRanges(tcp.Spec.NetworkProfile), ","),
		},
		APIServer: apiServer{CertSANs: certSANs(in)},
	}
	if apiVersion == kubeadmV1beta4 {
		cfg.Proxy = &struct{}{}
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

const (
	kubeadmV1beta3 = "kubeadm.k8s.io/v1beta3"
	kubeadmV1beta4 = "kubeadm.k8s.io/v1beta4"
)

// kubeadmAPIVersion is the kubeadm configuration version kubeadm itself uploads at a minor:
// v1beta3 up to v1.30 (where v1beta4 is still experimental), v1beta4 from v1.31. kubeadm v1.37
// reads v1beta4 but no longer v1beta3, so the version follows the tenant's minor.
func kubeadmAPIVersion(kubernetesVersion string) string {
	if m, ok := kubeversion.Minor(kubernetesVersion); ok && m <= 30 {
		return kubeadmV1beta3
	}
	return kubeadmV1beta4
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
