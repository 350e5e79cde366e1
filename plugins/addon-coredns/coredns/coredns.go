// Package coredns renders the CoreDNS addon of a tenant cluster as kubeadm deploys it: the
// coredns ServiceAccount, the system:coredns ClusterRole and ClusterRoleBinding, the coredns
// ConfigMap (Corefile), the coredns Deployment and the kube-dns Service, all in kube-system.
package coredns

import (
	"context"
	"net"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/addon"
)

// Version is the plugin release, set at build time with
// -ldflags "-X github.com/openhcp/kamaji/plugins/addon-coredns/coredns.Version=1.2.3".
var Version = "0.1.0"

const (
	// Name is the plugin's name in GetPluginInfo.
	Name = "kamaji-addon-coredns"
	// AddonName is the addon served, the value of RenderRequest.Addon.
	AddonName = "coredns"

	// DefaultImageRepository is kubeadm's; with it the image is registry.k8s.io/coredns/coredns,
	// with an override R it is R/coredns (kubeadm's rule, so existing mirrors keep working).
	DefaultImageRepository = "registry.k8s.io"
	imageName              = "coredns"
	// DefaultReplicas is kubeadm's replica count.
	DefaultReplicas = 2

	// ParamReplicas is the only parameter: the Deployment's replicas (integer >= 1).
	ParamReplicas = "replicas"

	namespace          = metav1.NamespaceSystem
	serviceAccountName = "coredns"
	clusterRoleName    = "system:coredns"
	configMapName      = "coredns"
	deploymentName     = "coredns"
	serviceName        = "kube-dns"
	controlPlaneTaint  = "node-role.kubernetes.io/control-plane"
)

// versions is the CoreDNS version kubeadm deploys for each Kubernetes minor of the window the
// core is tested with (cmd/kubeadm/app/constants.CoreDNSVersion of v1.30.14, v1.31.14, v1.32.13,
// v1.33.13, v1.34.4, v1.35.4, v1.36.3 and v1.37.2). The objects are the same for all: kubeadm's
// manifest only gained named probe ports and a cache block CoreDNS v1.11 understands.
var versions = map[int]string{
	30: "v1.11.3",
	31: "v1.11.3",
	32: "v1.11.3",
	33: "v1.12.0",
	34: "v1.12.1",
	35: "v1.13.1",
	36: "v1.14.2",
	37: "v1.14.6",
}

// Version window of the table: newer minors get the newest known CoreDNS, as a kubeadm binary
// one minor behind would deploy; older ones (accepted by the core, untested) the oldest.
const (
	minMinor = 30
	maxMinor = 37
)

// CoreDNSVersion is the CoreDNS image tag kubeadm uses for a Kubernetes version.
func CoreDNSVersion(kubernetesVersion string) (string, error) {
	minor, err := addon.KubernetesMinor(kubernetesVersion)
	if err != nil {
		return "", err
	}
	return versions[max(min(minor, maxMinor), minMinor)], nil
}

// Plugin implements addon.Plugin for CoreDNS. It keeps no state.
type Plugin struct{}

var _ addon.Plugin = Plugin{}

func (Plugin) GetPluginInfo(context.Context) (addon.PluginInfo, error) {
	return addon.PluginInfo{Name: Name, VendorVersion: Version, Addons: []string{AddonName}}, nil
}

// Capabilities: none; CoreDNS adds nothing to the control-plane pod.
func (Plugin) Capabilities(context.Context) ([]addon.Capability, error) { return nil, nil }

func (Plugin) Probe(context.Context) (addon.ProbeResult, error) {
	return addon.ProbeResult{Ready: true}, nil
}

// input is a validated request.
type input struct {
	image    string
	domain   string
	dnsIP    string
	replicas int32
}

func parse(req addon.RenderRequest) (input, error) {
	if req.Addon != AddonName {
		return input{}, sdk.InvalidField("addon", "this plugin serves %q, not %q", AddonName, req.Addon)
	}
	t := req.Tenant
	if t.KubernetesVersion == "" {
		return input{}, sdk.InvalidField("tenant.kubernetesVersion", "required")
	}
	tag, err := CoreDNSVersion(t.KubernetesVersion)
	if err != nil {
		return input{}, err
	}
	if t.ImageTag != "" {
		tag = t.ImageTag
	}
	repo := DefaultImageRepository + "/coredns"
	if r := strings.TrimSuffix(t.ImageRepository, "/"); r != "" && r != DefaultImageRepository {
		repo = r
	}
	in := input{image: repo + "/" + imageName + ":" + tag, replicas: DefaultReplicas}

	in.domain = strings.TrimSuffix(t.ClusterDomain, ".")
	switch {
	case in.domain == "":
		return input{}, sdk.InvalidField("tenant.clusterDomain", "required")
	case strings.ContainsAny(in.domain, " \t\n{}#\""):
		return input{}, sdk.InvalidField("tenant.clusterDomain", "%q is not a DNS domain", t.ClusterDomain)
	}
	if len(t.DNSServiceIPs) == 0 || t.DNSServiceIPs[0] == "" {
		return input{}, sdk.InvalidField("tenant.dnsServiceIps", "required: the kube-dns Service takes the first one")
	}
	if net.ParseIP(t.DNSServiceIPs[0]) == nil {
		return input{}, sdk.InvalidField("tenant.dnsServiceIps[0]", "%q is not an IP address", t.DNSServiceIPs[0])
	}
	in.dnsIP = t.DNSServiceIPs[0]

	keys := make([]string, 0, len(req.Params))
	for k := range req.Params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch k {
		case ParamReplicas:
			if in.replicas, err = addon.IntParam(req.Params[k], "params."+k, 1); err != nil {
				return input{}, err
			}
		default:
			return input{}, sdk.InvalidField("params."+k, "unknown parameter (known: %s); image overrides are tenant.imageRepository and tenant.imageTag", ParamReplicas)
		}
	}
	return in, nil
}

// Render returns, in this order: ServiceAccount, ClusterRole, ClusterRoleBinding, ConfigMap,
// Deployment, Service.
func (Plugin) Render(_ context.Context, req addon.RenderRequest) (addon.RenderResult, error) {
	in, err := parse(req)
	if err != nil {
		return addon.RenderResult{}, err
	}
	var out addon.RenderResult
	for _, obj := range []any{serviceAccount(), clusterRole(), clusterRoleBinding(), configMap(in), deployment(in), service(in)} {
		b, err := addon.EncodeObject(obj)
		if err != nil {
			return addon.RenderResult{}, err
		}
		out.Objects = append(out.Objects, b)
	}
	return out, nil
}

var dnsLabels = map[string]string{"k8s-app": "kube-dns"}

func serviceAccount() *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: objectMeta(serviceAccountName, namespace, nil),
	}
}

func clusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: objectMeta(clusterRoleName, "", nil),
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		},
	}
}

func clusterRoleBinding() *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: objectMeta(clusterRoleName, "", nil),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRoleName},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: serviceAccountName, Namespace: namespace}},
	}
}

// Corefile is kubeadm's Corefile for the cluster domain.
func Corefile(domain string) string {
	return `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes ` + domain + ` in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success ` + domain + `
       disable denial ` + domain + `
    }
    loop
    reload
    loadbalance
}
`
}

func configMap(in input) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: objectMeta(configMapName, namespace, nil),
		Data:       map[string]string{"Corefile": Corefile(in.domain)},
	}
}

func deployment(in input) *appsv1.Deployment {
	maxUnavailable := intstr.FromInt32(1)
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: objectMeta(deploymentName, namespace, dnsLabels),
		Spec: appsv1.DeploymentSpec{
			Replicas: &in.replicas,
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &maxUnavailable},
			},
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"k8s-app": "kube-dns"}},
				Spec:       podSpec(in),
			},
		},
	}
}

func podSpec(in input) corev1.PodSpec {
	falseV := false
	trueV := true
	return corev1.PodSpec{
		PriorityClassName:  "system-cluster-critical",
		ServiceAccountName: serviceAccountName,
		Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
				Weight: 100,
				PodAffinityTerm: corev1.PodAffinityTerm{
					LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
						{Key: "k8s-app", Operator: metav1.LabelSelectorOpIn, Values: []string{"kube-dns"}},
					}},
					TopologyKey: corev1.LabelHostname,
				},
			}},
		}},
		Tolerations: []corev1.Toleration{
			{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists},
			{Key: controlPlaneTaint, Effect: corev1.TaintEffectNoSchedule},
		},
		NodeSelector: map[string]string{corev1.LabelOSStable: "linux"},
		Containers: []corev1.Container{{
			Name:            "coredns",
			Image:           in.image,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("170Mi")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("70Mi")},
			},
			Args:         []string{"-conf", "/etc/coredns/Corefile"},
			VolumeMounts: []corev1.VolumeMount{{Name: "config-volume", MountPath: "/etc/coredns", ReadOnly: true}},
			Ports: []corev1.ContainerPort{
				{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
				{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
				{Name: "metrics", ContainerPort: 9153, Protocol: corev1.ProtocolTCP},
				{Name: "liveness-probe", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
				{Name: "readiness-probe", ContainerPort: 8181, Protocol: corev1.ProtocolTCP},
			},
			LivenessProbe: &corev1.Probe{
				ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/health", Port: intstr.FromString("liveness-probe"), Scheme: corev1.URISchemeHTTP,
				}},
				InitialDelaySeconds: 60, TimeoutSeconds: 5, SuccessThreshold: 1, FailureThreshold: 5,
			},
			ReadinessProbe: &corev1.Probe{
				ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/ready", Port: intstr.FromString("readiness-probe"), Scheme: corev1.URISchemeHTTP,
				}},
			},
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: &falseV,
				Capabilities: &corev1.Capabilities{
					Add:  []corev1.Capability{"NET_BIND_SERVICE"},
					Drop: []corev1.Capability{"ALL"},
				},
				ReadOnlyRootFilesystem: &trueV,
			},
		}},
		DNSPolicy: corev1.DNSDefault,
		Volumes: []corev1.Volume{{
			Name: "config-volume",
			VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: configMapName},
				Items:                []corev1.KeyToPath{{Key: "Corefile", Path: "Corefile"}},
			}},
		}},
	}
}

func service(in input) *corev1.Service {
	return &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: func() metav1.ObjectMeta {
			m := objectMeta(serviceName, namespace, map[string]string{
				"k8s-app":                       "kube-dns",
				"kubernetes.io/cluster-service": "true",
				"kubernetes.io/name":            "CoreDNS",
			})
			m.Annotations = map[string]string{"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}
			return m
		}(),
		Spec: corev1.ServiceSpec{
			ClusterIP: in.dnsIP,
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
				{Name: "metrics", Port: 9153, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9153)},
			},
			Selector: map[string]string{"k8s-app": "kube-dns"},
		},
	}
}
