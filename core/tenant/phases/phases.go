// Package phases builds what `kubeadm init` writes into a new cluster and nodes need to join it,
// for a tenant: the kubeadm and kubelet configuration ConfigMaps, the bootstrap-token RBAC
// (get nodes, post CSRs, automatic approval of node client certificates and their rotation),
// the kube-public/cluster-info ConfigMap, the kubeadm:cluster-admins binding and the RBAC that
// lets the apiserver reach the kubelets. Names, keys and subjects are kubeadm's, so that
// `kubeadm join` and `kubeadm token` work against the tenant. The functions are pure: the
// controller applies their output with server-side apply on every pass.
package phases

import (
	"fmt"
	"net"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// Phase names, the value of kamajiv1alpha1.PhaseLabel on their objects.
const (
	PhaseKubeadmConfig    = "upload-config-kubeadm"
	PhaseKubeletConfig    = "upload-config-kubelet"
	PhaseBootstrapToken   = "bootstrap-token"
	PhaseClusterInfo      = "cluster-info"
	PhaseClusterAdmins    = "cluster-admins"
	PhaseAPIServerKubelet = "apiserver-kubelet"
)

// kubeadm's well-known names (cmd/kubeadm/app/constants).
const (
	NodesGroup                  = "system:nodes"
	NodeBootstrapTokenAuthGroup = "system:bootstrappers:kubeadm:default-node-token"
	ClusterAdminsGroup          = "kubeadm:cluster-admins"
	APIServerKubeletClientUser  = "kube-apiserver-kubelet-client"
	AnonymousUser               = "system:anonymous"

	KubeadmConfigConfigMap                = "kubeadm-config"
	ClusterConfigurationKey               = "ClusterConfiguration"
	NodesKubeadmConfigRole                = "kubeadm:nodes-kubeadm-config"
	KubeletConfigConfigMap                = "kubelet-config"
	KubeletConfigKey                      = "kubelet"
	KubeletConfigRole                     = "kubeadm:kubelet-config"
	ClusterInfoConfigMap                  = "cluster-info"
	ClusterInfoKubeconfigKey              = "kubeconfig"
	ClusterInfoRole                       = "kubeadm:bootstrap-signer-clusterinfo"
	GetNodesRole                          = "kubeadm:get-nodes"
	KubeletBootstrapBinding               = "kubeadm:kubelet-bootstrap"
	NodeBootstrapperRole                  = "system:node-bootstrapper"
	NodeAutoApproveBootstrapBinding       = "kubeadm:node-autoapprove-bootstrap"
	NodeClientCSRRole                     = "system:certificates.k8s.io:certificatesigningrequests:nodeclient"
	NodeAutoApproveRotationBinding        = "kubeadm:node-autoapprove-certificate-rotation"
	SelfNodeClientCSRRole                 = "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"
	APIServerToKubeletRole                = "system:kube-apiserver-to-kubelet"
	KubeletAPIAdminRole                   = "system:kubelet-api-admin"
	KubeadmAPIServerKubeletBinding        = "kubeadm:apiserver-kubelet-client"
	CertificatesDir                       = "/etc/kubernetes/pki"
	DefaultImageRepository                = "registry.k8s.io"
	kubeletStaticPodPath                  = "/etc/kubernetes/manifests"
	kubeletHealthzBindAddress             = "127.0.0.1"
	kubeletHealthzPort              int32 = 10248
)

// Input is what the phases need to know about the tenant.
type Input struct {
	TCP *kamajiv1alpha1.TenantControlPlane
	// Endpoint is the tenant's public endpoint, "host:port" (status.controlPlaneEndpoint).
	Endpoint string
	// CACert is the tenant CA certificate (PEM).
	CACert []byte
	// EtcdServers are the datastore's endpoints as kube-apiserver reaches them.
	EtcdServers []string
}

func (in Input) validate() error {
	switch {
	case in.TCP == nil:
		return fmt.Errorf("phases: no TenantControlPlane")
	case in.Endpoint == "":
		return fmt.Errorf("phases: the tenant has no endpoint yet")
	}
	if _, _, err := net.SplitHostPort(in.Endpoint); err != nil {
		return fmt.Errorf("phases: endpoint %q: %w", in.Endpoint, err)
	}
	return nil
}

// meta is the metadata of a phase object: kubeadm's name, our labels.
func meta(phase, name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{
		kamajiv1alpha1.ManagedByLabel: kamajiv1alpha1.ManagedByValue,
		kamajiv1alpha1.PhaseLabel:     phase,
	}}
}

func group(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: name}
}

func user(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

func clusterRole(phase, name string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: meta(phase, name, ""),
		Rules:      rules,
	}
}

func clusterRoleBinding(phase, name, role string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: meta(phase, name, ""),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   subjects,
	}
}

// configMapReader is a Role granting get on one ConfigMap, and its RoleBinding.
func configMapReader(phase, namespace, name, configMap string, subjects ...rbacv1.Subject) []client.Object {
	return []client.Object{
		&rbacv1.Role{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
			ObjectMeta: meta(phase, name, namespace),
			Rules: []rbacv1.PolicyRule{{
				Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{configMap},
			}},
		},
		&rbacv1.RoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
			ObjectMeta: meta(phase, name, namespace),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects:   subjects,
		},
	}
}

// BootstrapToken is the RBAC of kubeadm's bootstrap-token phase: a bootstrap token may read
// nodes (kubeadm join checks for a node of the same name) and post CSRs, the csrapprover of the
// tenant's controller manager approves the node client CSRs of bootstrap tokens and the renewal
// CSRs of nodes.
func BootstrapToken() []client.Object {
	const ph = PhaseBootstrapToken
	return []client.Object{
		clusterRole(ph, GetNodesRole, rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"nodes"}}),
		clusterRoleBinding(ph, GetNodesRole, GetNodesRole, group(NodeBootstrapTokenAuthGroup)),
		clusterRoleBinding(ph, KubeletBootstrapBinding, NodeBootstrapperRole, group(NodeBootstrapTokenAuthGroup)),
		clusterRoleBinding(ph, NodeAutoApproveBootstrapBinding, NodeClientCSRRole, group(NodeBootstrapTokenAuthGroup)),
		clusterRoleBinding(ph, NodeAutoApproveRotationBinding, SelfNodeClientCSRRole, group(NodesGroup)),
	}
}

// ClusterAdmins binds kubeadm:cluster-admins, the group of admin.conf, to cluster-admin. The
// core itself uses super-admin.conf (system:masters) to create it.
func ClusterAdmins() []client.Object {
	return []client.Object{clusterRoleBinding(PhaseClusterAdmins, ClusterAdminsGroup, "cluster-admin", group(ClusterAdminsGroup))}
}

// APIServerKubelet lets the apiserver's kubelet client (CN kube-apiserver-kubelet-client)
// reach the kubelet API (logs, exec, port-forward, metrics) when kubelets authorize through
// the apiserver (authorization mode Webhook): the system:kube-apiserver-to-kubelet ClusterRole
// and its binding, and kubeadm's own binding to the built-in system:kubelet-api-admin.
func APIServerKubelet() []client.Object {
	const ph = PhaseAPIServerKubelet
	return []client.Object{
		clusterRole(ph, APIServerToKubeletRole,
			rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch", "proxy"}},
			rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{
				"nodes/proxy", "nodes/stats", "nodes/log", "nodes/spec", "nodes/metrics", "nodes/configz", "nodes/healthz", "nodes/pods",
			}, Verbs: []string{"*"}},
		),
		clusterRoleBinding(ph, APIServerToKubeletRole, APIServerToKubeletRole, user(APIServerKubeletClientUser)),
		clusterRoleBinding(ph, KubeadmAPIServerKubeletBinding, KubeletAPIAdminRole, user(APIServerKubeletClientUser)),
	}
}
