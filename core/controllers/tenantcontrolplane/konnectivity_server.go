package tenantcontrolplane

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// konnectivityServerContainer is the konnectivity addon's sidecar in the control-plane pod
// (Kamaji's container name, and the konnectivity plugin's).
const konnectivityServerContainer = "konnectivity-server"

// paramServerSecurityContext is spec.addons.konnectivity.server.securityContext. The core applies
// it to the sidecar the plugin renders, so the plugin never sees it: the addon contract (whose
// plugins refuse parameters they do not know) stays as it is.
const paramServerSecurityContext = "securityContext"

// konnectivityPluginParams removes from the konnectivity parameters what the core applies itself.
func konnectivityPluginParams(params map[string]any) map[string]any {
	if server, ok := params["server"].(map[string]any); ok {
		delete(server, paramServerSecurityContext)
	}
	return params
}

// konnectivityServerSecurityContext sets spec.addons.konnectivity.server.securityContext on the
// konnectivity-server container of the konnectivity addon's additions. Unset, the container
// keeps what the plugin rendered. Set, the plugin must have rendered that container.
func konnectivityServerSecurityContext(tcp *kamajiv1alpha1.TenantControlPlane, containers []corev1.Container) error {
	k := tcp.Spec.Addons.Konnectivity
	if k == nil || k.KonnectivityServerSpec.SecurityContext == nil {
		return nil
	}
	for i := range containers {
		if containers[i].Name == konnectivityServerContainer {
			containers[i].SecurityContext = k.KonnectivityServerSpec.SecurityContext.DeepCopy()
			return nil
		}
	}
	return fmt.Errorf("spec.addons.konnectivity.server.securityContext: the konnectivity plugin rendered no %s container to apply it to", konnectivityServerContainer)
}

// konnectivityService records the Service the agents dial: the Tenant Control Plane's, on the
// port the konnectivity addon declared on it.
func konnectivityService(p *pass) {
	ks := &p.status.Addons.Konnectivity
	ports := p.addonPorts[AddonKonnectivity]
	if len(ports) == 0 || p.status.Kubernetes.Service.Name == "" {
		ks.Service = nil
		return
	}
	svc := p.status.Kubernetes.Service.DeepCopy()
	svc.Port = ports[0].Port
	ks.Service = svc
}
