package phases

import (
	"encoding/json"
	"fmt"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/netprofile"
)

// DefaultCgroupDriver is kubeadm's default.
const DefaultCgroupDriver = "systemd"

// PatchError names the JSON patch of spec.kubernetes.kubelet.configurationJSONPatches that
// could not be applied.
type PatchError struct {
	Index int
	Err   error
}

func (e *PatchError) Error() string {
	return fmt.Sprintf("spec.kubernetes.kubelet.configurationJSONPatches[%d]: %v", e.Index, e.Err)
}

func (e *PatchError) Unwrap() error { return e.Err }

// KubeletConfiguration renders the KubeletConfiguration every node of the tenant starts from:
// kubeadm's defaults (client CA, webhook authentication and authorization, static pods,
// healthz on loopback, certificate rotation), the cgroup driver of
// spec.kubernetes.kubelet.cgroupfs (systemd by default), the cluster DNS and domain; then the
// RFC 6902 patches of spec.kubernetes.kubelet.configurationJSONPatches, in order.
func KubeletConfiguration(tcp *kamajiv1alpha1.TenantControlPlane) ([]byte, error) {
	if tcp == nil {
		return nil, fmt.Errorf("phases: no TenantControlPlane")
	}
	kl := tcp.Spec.Kubernetes.Kubelet
	driver := string(kl.CGroupFS)
	if driver == "" {
		driver = DefaultCgroupDriver
	}
	cfg := kubeletv1beta1.KubeletConfiguration{
		TypeMeta:      metav1.TypeMeta{APIVersion: "kubelet.config.k8s.io/v1beta1", Kind: "KubeletConfiguration"},
		StaticPodPath: kubeletStaticPodPath,
		ClusterDomain: netprofile.ClusterDomain(tcp.Spec.NetworkProfile),
		ClusterDNS:    netprofile.ClusterDNS(tcp.Spec.NetworkProfile),
		Authentication: kubeletv1beta1.KubeletAuthentication{
			X509:      kubeletv1beta1.KubeletX509Authentication{ClientCAFile: CertificatesDir + "/ca.crt"},
			Webhook:   kubeletv1beta1.KubeletWebhookAuthentication{Enabled: ptr.To(true)},
			Anonymous: kubeletv1beta1.KubeletAnonymousAuthentication{Enabled: ptr.To(false)},
		},
		Authorization:      kubeletv1beta1.KubeletAuthorization{Mode: kubeletv1beta1.KubeletAuthorizationModeWebhook},
		HealthzBindAddress: kubeletHealthzBindAddress,
		HealthzPort:        ptr.To(kubeletHealthzPort),
		RotateCertificates: true,
		CgroupDriver:       driver,
	}
	doc, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	for i, p := range kl.ConfigurationJSONPatches {
		op := map[string]any{"op": p.Op, "path": p.Path}
		if p.From != "" {
			op["from"] = p.From
		}
		if p.Value != nil {
			op["value"] = json.RawMessage(p.Value.Raw)
		}
		raw, err := json.Marshal([]any{op})
		if err != nil {
			return nil, &PatchError{Index: i, Err: err}
		}
		patch, err := jsonpatch.DecodePatch(raw)
		if err != nil {
			return nil, &PatchError{Index: i, Err: err}
		}
		if doc, err = patch.Apply(doc); err != nil {
			return nil, &PatchError{Index: i, Err: err}
		}
	}
	return yaml.JSONToYAML(doc)
}

// KubeletConfig is kubeadm's upload-config/kubelet phase: the KubeletConfiguration in
// kube-system/kubelet-config (key "kubelet"), readable by nodes and bootstrap tokens.
func KubeletConfig(tcp *kamajiv1alpha1.TenantControlPlane) ([]client.Object, error) {
	kc, err := KubeletConfiguration(tcp)
	if err != nil {
		return nil, err
	}
	const ph = PhaseKubeletConfig
	out := []client.Object{&corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta(ph, KubeletConfigConfigMap, metav1.NamespaceSystem),
		Data:       map[string]string{KubeletConfigKey: string(kc)},
	}}
	return append(out, configMapReader(ph, metav1.NamespaceSystem, KubeletConfigRole, KubeletConfigConfigMap,
		group(NodesGroup), group(NodeBootstrapTokenAuthGroup))...), nil
}
