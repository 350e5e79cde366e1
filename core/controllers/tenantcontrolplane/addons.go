package tenantcontrolplane

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/netprofile"
	"github.com/openhcp/kamaji/sdk/addon"
)

// Addon names, as plugins serve them (kamaji.yaml `addons: [...]`).
const (
	AddonCoreDNS      = "coredns"
	AddonKubeProxy    = "kube-proxy"
	AddonKonnectivity = "konnectivity"
)

// knownAddons are the addons of spec.addons, in the order they are rendered and applied.
var knownAddons = []string{AddonKonnectivity, AddonCoreDNS, AddonKubeProxy}

// addonSpec is one enabled addon of the spec, ready for Render.
type addonSpec struct {
	name            string
	imageRepository string
	imageTag        string
	params          map[string]any
}

// enabledAddons lists the addons the spec enables, in knownAddons order.
func enabledAddons(tcp *kamajiv1alpha1.TenantControlPlane) ([]addonSpec, error) {
	a := tcp.Spec.Addons
	var out []addonSpec
	for _, name := range knownAddons {
		switch name {
		case AddonKonnectivity:
			if a.Konnectivity == nil {
				continue
			}
			params, err := toParams(a.Konnectivity)
			if err != nil {
				return nil, fmt.Errorf("spec.addons.konnectivity: %w", err)
			}
			out = append(out, addonSpec{name: name, params: konnectivityPluginParams(params)})
		case AddonCoreDNS:
			if a.CoreDNS != nil {
				out = append(out, addonSpec{name: name, imageRepository: a.CoreDNS.ImageRepository, imageTag: a.CoreDNS.ImageTag})
			}
		case AddonKubeProxy:
			if a.KubeProxy != nil {
				out = append(out, addonSpec{name: name, imageRepository: a.KubeProxy.ImageRepository, imageTag: a.KubeProxy.ImageTag})
			}
		}
	}
	return out, nil
}

// toParams is the JSON of an addon's spec as Render's parameters.
func toParams(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// tenantParameters describe the tenant to addon plugins.
func tenantParameters(tcp *kamajiv1alpha1.TenantControlPlane, endpoint string, a addonSpec) (addon.TenantParameters, error) {
	np := tcp.Spec.NetworkProfile
	host, portStr, err := net.SplitHostPort(endpoint)
	if err != nil {
		return addon.TenantParameters{}, fmt.Errorf("control-plane endpoint %q: %w", endpoint, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return addon.TenantParameters{}, fmt.Errorf("control-plane endpoint %q: %w", endpoint, err)
	}
	return addon.TenantParameters{
		Name: tcp.Name, Namespace: tcp.Namespace,
		KubernetesVersion: tcp.Spec.Kubernetes.Version,
		ClusterDomain:     netprofile.ClusterDomain(np),
		ServiceCIDRs:      netprofile.ServiceRanges(np),
		PodCIDRs:          netprofile.PodRanges(np),
		// A TCP the defaulting webhook never saw has none in its spec.
		DNSServiceIPs:        netprofile.ClusterDNS(np),
		ControlPlaneEndpoint: addon.Endpoint{Host: host, Port: int32(port)},
		ImageRepository:      a.imageRepository,
		ImageTag:             a.imageTag,
	}, nil
}

// addonStatusView points into the status fields of an addon: enabled, the checksum of what
// is applied in the tenant and when it last changed.
type addonStatusView struct {
	enabled    *bool
	checksum   *string
	lastUpdate *metav1.Time
}

func addonStatusOf(st *kamajiv1alpha1.AddonsStatus, name string) addonStatusView {
	switch name {
	case AddonCoreDNS:
		return addonStatusView{&st.CoreDNS.Enabled, &st.CoreDNS.Checksum, &st.CoreDNS.LastUpdate}
	case AddonKubeProxy:
		return addonStatusView{&st.KubeProxy.Enabled, &st.KubeProxy.Checksum, &st.KubeProxy.LastUpdate}
	}
	return addonStatusView{&st.Konnectivity.Enabled, &st.Konnectivity.Agent.Checksum, &st.Konnectivity.Agent.LastUpdate}
}
