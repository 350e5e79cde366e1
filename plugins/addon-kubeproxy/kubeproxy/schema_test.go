package kubeproxy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/openhcp/kamaji/sdk/addon"
)

// The ConfigMap's files decode strictly into kube-proxy's and client-go's own types: no unknown
// or misspelt field, the values where kube-proxy reads them.
func TestConfigMapFilesDecodeStrictly(t *testing.T) {
	for _, tc := range []struct {
		endpoint addon.Endpoint
		mode     string
		server   string
	}{
		{addon.Endpoint{Host: "192.0.2.10", Port: 6443}, "iptables", "https://192.0.2.10:6443"},
		{addon.Endpoint{Host: "fd00::10", Port: 443}, "nftables", "https://[fd00::10]:443"},
		{addon.Endpoint{Host: "tenant.example.com", Port: 31443}, "ipvs", "https://tenant.example.com:31443"},
	} {
		req := request()
		req.Tenant.ControlPlaneEndpoint = tc.endpoint
		req.Params = map[string]any{"mode": tc.mode}
		var cm corev1.ConfigMap
		find(t, render(t, req), "ConfigMap", "kube-proxy", &cm)

		var kp kubeproxyv1alpha1.KubeProxyConfiguration
		if err := yaml.UnmarshalStrict([]byte(cm.Data["config.conf"]), &kp); err != nil {
			t.Fatalf("config.conf: %v\n%s", err, cm.Data["config.conf"])
		}
		if kp.Kind != "KubeProxyConfiguration" || kp.APIVersion != "kubeproxy.config.k8s.io/v1alpha1" ||
			string(kp.Mode) != tc.mode || kp.ClusterCIDR != "10.244.0.0/16,fd00:10:244::/56" ||
			kp.ClientConnection.Kubeconfig != "/var/lib/kube-proxy/kubeconfig.conf" {
			t.Errorf("KubeProxyConfiguration %+v", kp)
		}

		var kc clientcmdv1.Config
		if err := yaml.UnmarshalStrict([]byte(cm.Data["kubeconfig.conf"]), &kc); err != nil {
			t.Fatalf("kubeconfig.conf: %v\n%s", err, cm.Data["kubeconfig.conf"])
		}
		if kc.CurrentContext != "default" || len(kc.Clusters) != 1 || kc.Clusters[0].Cluster.Server != tc.server ||
			kc.AuthInfos[0].AuthInfo.TokenFile != "/var/run/secrets/kubernetes.io/serviceaccount/token" {
			t.Errorf("kubeconfig %+v", kc)
		}
	}
}
