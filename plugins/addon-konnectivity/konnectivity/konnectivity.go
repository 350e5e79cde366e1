// Package konnectivity renders the Konnectivity addon of a tenant: in the tenant cluster the
// konnectivity-agent (a DaemonSet or a Deployment), its ServiceAccount, and the
// system:konnectivity-server ClusterRoleBinding that lets the server review the agents' tokens;
// in the control-plane pod the konnectivity-server sidecar, its volumes and the Service port the
// agents dial.
package konnectivity

import (
	"context"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/openhcp/kamaji/sdk/addon"
)

// Version is the plugin release, set at build time with
// -ldflags "-X github.com/openhcp/kamaji/plugins/addon-konnectivity/konnectivity.Version=1.2.3".
var Version = "0.1.0"

const (
	// Name is the plugin's name in GetPluginInfo.
	Name = "kamaji-addon-konnectivity"
	// AddonName is the addon served, the value of RenderRequest.Addon.
	AddonName = "konnectivity"

	namespace = metav1.NamespaceSystem
	// AgentName names the agent's ServiceAccount and workload; the server accepts tokens of
	// that ServiceAccount only.
	AgentName = "konnectivity-agent"
	// ServerUser is the user konnectivity-server authenticates as (the CN of its certificate);
	// it is bound to system:auth-delegator to review the agents' tokens.
	ServerUser = "system:konnectivity-server"
	// Audience is the audience of the agents' projected tokens.
	Audience = "system:konnectivity-server"

	adminPort  = 8133
	healthPort = 8134

	saCACert       = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
	agentTokenDir  = "/var/run/secrets/tokens"
	agentTokenFile = "konnectivity-agent-token"
)

// Plugin implements addon.Plugin for Konnectivity. It keeps no state.
type Plugin struct{}

var _ addon.Plugin = Plugin{}

func (Plugin) GetPluginInfo(context.Context) (addon.PluginInfo, error) {
	return addon.PluginInfo{Name: Name, VendorVersion: Version, Addons: []string{AddonName}}, nil
}

// Capabilities: the server runs in the control-plane pod.
func (Plugin) Capabilities(context.Context) ([]addon.Capability, error) {
	return []addon.Capability{addon.CapabilityControlPlaneAdditions}, nil
}

func (Plugin) Probe(context.Context) (addon.ProbeResult, error) {
	return addon.ProbeResult{Ready: true}, nil
}

// Render returns, in this order: ServiceAccount, ClusterRoleBinding, then the agent's DaemonSet
// or Deployment; and the control-plane additions (see ControlPlane).
func (Plugin) Render(_ context.Context, req addon.RenderRequest) (addon.RenderResult, error) {
	in, err := parse(req)
	if err != nil {
		return addon.RenderResult{}, err
	}
	workload := any(agentDaemonSet(in))
	if in.mode == ModeDeployment {
		workload = agentDeployment(in)
	}
	var out addon.RenderResult
	for _, obj := range []any{agentServiceAccount(), serverClusterRoleBinding(), workload} {
		b, err := addon.EncodeObject(obj)
		if err != nil {
			return addon.RenderResult{}, err
		}
		out.Objects = append(out.Objects, b)
	}
	if out.ControlPlane, err = controlPlane(in); err != nil {
		return addon.RenderResult{}, err
	}
	return out, nil
}

func agentServiceAccount() *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: objectMeta(AgentName, namespace, map[string]string{"kubernetes.io/cluster-service": "true"}),
	}
}

func serverClusterRoleBinding() *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: objectMeta(ServerUser, "", map[string]string{"kubernetes.io/cluster-service": "true"}),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: ServerUser}},
	}
}

// agentArgs are the agent's flags before extraArgs: it dials the control-plane endpoint on the
// server's agent port, trusts the tenant CA (the service account's ca.crt), authenticates with a
// projected token for the server's audience, and announces its node's address so that the
// destHost strategy routes traffic for a node through that node's agent.
func agentArgs(host string, port int32) []string {
	return []string{
		"--ca-cert=" + saCACert,
		"--proxy-server-host=" + host,
		"--proxy-server-port=" + strconv.Itoa(int(port)),
		"--admin-server-port=" + strconv.Itoa(adminPort),
		"--health-server-port=" + strconv.Itoa(healthPort),
		"--service-account-token-path=" + agentTokenDir + "/" + agentTokenFile,
		"--agent-identifiers=host=$(HOST_IP)",
	}
}

var agentLabels = map[string]string{"k8s-app": AgentName}

func agentPodTemplate(in input) corev1.PodTemplateSpec {
	expiration := int64(3600)
	ps := corev1.PodSpec{
		PriorityClassName:  "system-cluster-critical",
		ServiceAccountName: AgentName,
		HostNetwork:        in.hostNetwork,
		Tolerations:        in.tolerations,
		NodeSelector:       map[string]string{corev1.LabelOSStable: "linux"},
		Containers: []corev1.Container{{
			Name:            AgentName,
			Image:           in.agentImage,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Command:         []string{"/proxy-agent"},
			Args:            in.agentArgs,
			Env: []corev1.EnvVar{{Name: "HOST_IP", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.hostIP"},
			}}},
			LivenessProbe: &corev1.Probe{
				ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/healthz", Port: intstr.FromInt32(in.agentHealth), Scheme: corev1.URISchemeHTTP,
				}},
				InitialDelaySeconds: 15, TimeoutSeconds: 15,
			},
			VolumeMounts: []corev1.VolumeMount{{Name: agentTokenFile, MountPath: agentTokenDir, ReadOnly: true}},
		}},
		Volumes: []corev1.Volume{{
			Name: agentTokenFile,
			VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
					Path: agentTokenFile, Audience: Audience, ExpirationSeconds: &expiration,
				}}},
			}},
		}},
	}
	if in.hostNetwork {
		// Keep cluster DNS for the proxied traffic while using the node's network.
		ps.DNSPolicy = corev1.DNSClusterFirstWithHostNet
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"k8s-app": AgentName}},
		Spec:       ps,
	}
}

func agentDaemonSet(in input) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: objectMeta(AgentName, namespace, agentLabels),
		Spec: appsv1.DaemonSetSpec{
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": AgentName}},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType},
			Template:       agentPodTemplate(in),
		},
	}
}

func agentDeployment(in input) *appsv1.Deployment {
	tpl := agentPodTemplate(in)
	// Spread the replicas over the nodes when possible: one agent per node reaches the most.
	tpl.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
			Weight: 100,
			PodAffinityTerm: corev1.PodAffinityTerm{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": AgentName}},
				TopologyKey:   corev1.LabelHostname,
			},
		}},
	}}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: objectMeta(AgentName, namespace, agentLabels),
		Spec: appsv1.DeploymentSpec{
			Replicas: &in.replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": AgentName}},
			Template: tpl,
		},
	}
}
