// Package kubeproxy renders the kube-proxy addon of a tenant cluster as kubeadm deploys it: the
// kube-proxy ServiceAccount, the kubeadm:node-proxier ClusterRoleBinding (to system:node-proxier),
// the kube-proxy Role and RoleBinding that let joining nodes read the configuration, the
// kube-proxy ConfigMap (KubeProxyConfiguration and a kubeconfig using the pod's service account
// token) and the kube-proxy DaemonSet, all in kube-system.
package kubeproxy

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/addon"
)

// Version is the plugin release, set at build time with
// -ldflags "-X github.com/openhcp/kamaji/plugins/addon-kubeproxy/kubeproxy.Version=1.2.3".
var Version = "0.1.0"

const (
	// Name is the plugin's name in GetPluginInfo.
	Name = "kamaji-addon-kubeproxy"
	// AddonName is the addon served, the value of RenderRequest.Addon.
	AddonName = "kube-proxy"

	// DefaultImageRepository is kubeadm's; the image is <repository>/kube-proxy:<version>.
	DefaultImageRepository = "registry.k8s.io"
	imageName              = "kube-proxy"

	// ParamMode is the only parameter: the proxy mode, one of Modes; default DefaultMode.
	ParamMode   = "mode"
	DefaultMode = "iptables"

	namespace       = metav1.NamespaceSystem
	name            = "kube-proxy"
	crbName         = "kubeadm:node-proxier"
	nodeProxierRole = "system:node-proxier"
	// bootstrapGroup is kubeadm's group of bootstrap tokens: kubeadm join reads the ConfigMap.
	bootstrapGroup = "system:bootstrappers:kubeadm:default-node-token"

	configDir     = "/var/lib/kube-proxy"
	configKey     = "config.conf"
	kubeconfigKey = "kubeconfig.conf"
	saDir         = "/var/run/secrets/kubernetes.io/serviceaccount"
)

// Modes are the proxy modes kube-proxy accepts on Linux.
var Modes = []string{"iptables", "ipvs", "nftables"}

// Plugin implements addon.Plugin for kube-proxy. It keeps no state.
type Plugin struct{}

var _ addon.Plugin = Plugin{}

func (Plugin) GetPluginInfo(context.Context) (addon.PluginInfo, error) {
	return addon.PluginInfo{Name: Name, VendorVersion: Version, Addons: []string{AddonName}}, nil
}

// Capabilities: none; kube-proxy adds nothing to the control-plane pod.
func (Plugin) Capabilities(context.Context) ([]addon.Capability, error) { return nil, nil }

func (Plugin) Probe(context.Context) (addon.ProbeResult, error) {
	return addon.ProbeResult{Ready: true}, nil
}

type input struct {
	image       string
	server      string
	clusterCIDR string
	bindAddress string
	mode        string
}

// ImageTag is kubeadm's image tag for a Kubernetes version: "v" first, "+" replaced by "_".
func ImageTag(kubernetesVersion string) string {
	return "v" + strings.ReplaceAll(strings.TrimPrefix(kubernetesVersion, "v"), "+", "_")
}

func parse(req addon.RenderRequest) (input, error) {
	if req.Addon != AddonName {
		return input{}, sdk.InvalidField("addon", "this plugin serves %q, not %q", AddonName, req.Addon)
	}
	t := req.Tenant
	if t.KubernetesVersion == "" {
		return input{}, sdk.InvalidField("tenant.kubernetesVersion", "required")
	}
	if _, err := addon.KubernetesMinor(t.KubernetesVersion); err != nil {
		return input{}, err
	}
	tag := ImageTag(t.KubernetesVersion)
	if t.ImageTag != "" {
		tag = t.ImageTag
	}
	repo := DefaultImageRepository
	if r := strings.TrimSuffix(t.ImageRepository, "/"); r != "" {
		repo = r
	}
	in := input{image: repo + "/" + imageName + ":" + tag, mode: DefaultMode, bindAddress: "0.0.0.0"}

	host, port := t.ControlPlaneEndpoint.Host, t.ControlPlaneEndpoint.Port
	switch {
	case host == "":
		return input{}, sdk.InvalidField("tenant.controlPlaneEndpoint.host", "required: kube-proxy connects there")
	case strings.ContainsAny(host, "/ \t\n\"'") || strings.Contains(host, ":") && net.ParseIP(strings.Trim(host, "[]")) == nil:
		return input{}, sdk.InvalidField("tenant.controlPlaneEndpoint.host", "%q is not a host name or address", host)
	case port == 0:
		return input{}, sdk.InvalidField("tenant.controlPlaneEndpoint.port", "required: kube-proxy connects there")
	case port < 0 || port > 65535:
		return input{}, sdk.InvalidField("tenant.controlPlaneEndpoint.port", "%d is not a port", port)
	}
	in.server = "https://" + net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(int(port)))
	// kubeadm binds to the wildcard of the control plane's address family.
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil && ip.To4() == nil {
		in.bindAddress = "::"
	}

	for i, c := range t.PodCIDRs {
		if _, _, err := net.ParseCIDR(c); err != nil {
			return input{}, sdk.InvalidField("tenant.podCidrs["+strconv.Itoa(i)+"]", "%q is not a CIDR", c)
		}
	}
	in.clusterCIDR = strings.Join(t.PodCIDRs, ",")

	keys := make([]string, 0, len(req.Params))
	for k := range req.Params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch k {
		case ParamMode:
			m, ok := req.Params[k].(string)
			if !ok || !slices.Contains(Modes, m) {
				return input{}, sdk.InvalidField("params."+k, "must be one of %s, not %s", strings.Join(Modes, ", "), addon.DescribeValue(req.Params[k]))
			}
			in.mode = m
		default:
			return input{}, sdk.InvalidField("params."+k, "unknown parameter (known: %s); image overrides are tenant.imageRepository and tenant.imageTag", ParamMode)
		}
	}
	return in, nil
}

// Render returns, in this order: ServiceAccount, ClusterRoleBinding, Role, RoleBinding,
// ConfigMap, DaemonSet.
func (Plugin) Render(_ context.Context, req addon.RenderRequest) (addon.RenderResult, error) {
	in, err := parse(req)
	if err != nil {
		return addon.RenderResult{}, err
	}
	var out addon.RenderResult
	for _, obj := range []any{serviceAccount(), clusterRoleBinding(), role(), roleBinding(), configMap(in), daemonSet(in)} {
		b, err := addon.EncodeObject(obj)
		if err != nil {
			return addon.RenderResult{}, err
		}
		out.Objects = append(out.Objects, b)
	}
	return out, nil
}

func serviceAccount() *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: objectMeta(name, namespace, nil),
	}
}

func clusterRoleBinding() *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: objectMeta(crbName, "", nil),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: nodeProxierRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: namespace}},
	}
}

func role() *rbacv1.Role {
	return &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: objectMeta(name, namespace, nil),
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{name}, Verbs: []string{"get"},
		}},
	}
}

func roleBinding() *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: objectMeta(name, namespace, nil),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: bootstrapGroup}},
	}
}

// Kubeconfig is kubeadm's kube-proxy kubeconfig: the control-plane endpoint, trusted through the
// service account's CA, authenticated with the pod's service account token.
func Kubeconfig(server string) string {
	return `apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority: ` + saDir + `/ca.crt
    server: ` + server + `
  name: default
contexts:
- context:
    cluster: default
    namespace: default
    user: default
  name: default
current-context: default
users:
- name: default
  user:
    tokenFile: ` + saDir + `/token
`
}

// Configuration is the KubeProxyConfiguration; kube-proxy defaults every field not set here.
// Values are validated before (CIDRs, mode), so they need no YAML quoting.
func Configuration(bindAddress, clusterCIDR, mode string) string {
	s := `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
bindAddress: "` + bindAddress + `"
clientConnection:
  kubeconfig: ` + configDir + "/" + kubeconfigKey + "\n"
	if clusterCIDR != "" {
		s += "clusterCIDR: " + clusterCIDR + "\n"
	}
	return s + "mode: " + mode + "\n"
}

func configMap(in input) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: objectMeta(name, namespace, map[string]string{"app": "kube-proxy"}),
		Data: map[string]string{
			configKey:     Configuration(in.bindAddress, in.clusterCIDR, in.mode),
			kubeconfigKey: Kubeconfig(in.server),
		},
	}
}

func daemonSet(in input) *appsv1.DaemonSet {
	privileged := true
	fileOrCreate := corev1.HostPathFileOrCreate
	labels := map[string]string{"k8s-app": "kube-proxy"}
	return &appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: objectMeta(name, namespace, labels),
		Spec: appsv1.DaemonSetSpec{
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-proxy"}},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"k8s-app": "kube-proxy"}},
				Spec: corev1.PodSpec{
					PriorityClassName: "system-node-critical",
					Containers: []corev1.Container{{
						Name:            "kube-proxy",
						Image:           in.image,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Command: []string{
							"/usr/local/bin/kube-proxy",
							"--config=" + configDir + "/" + configKey,
							"--hostname-override=$(NODE_NAME)",
						},
						SecurityContext: &corev1.SecurityContext{Privileged: &privileged},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "kube-proxy", MountPath: configDir},
							{Name: "xtables-lock", MountPath: "/run/xtables.lock"},
							{Name: "lib-modules", MountPath: "/lib/modules", ReadOnly: true},
						},
						Env: []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"},
						}}},
					}},
					HostNetwork:        true,
					ServiceAccountName: name,
					Volumes: []corev1.Volume{
						{Name: "kube-proxy", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: name},
						}}},
						{Name: "xtables-lock", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
							Path: "/run/xtables.lock", Type: &fileOrCreate,
						}}},
						{Name: "lib-modules", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
							Path: "/lib/modules",
						}}},
					},
					Tolerations:  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					NodeSelector: map[string]string{corev1.LabelOSStable: "linux"},
				},
			},
		},
	}
}
