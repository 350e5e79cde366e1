// Package exposure builds the admin-cluster objects that expose a tenant's apiserver: the
// Service, and optionally an Ingress or a Gateway API TLSRoute; and it derives the tenant's
// public endpoint from them.
package exposure

import (
	"maps"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// Labels are set on every object the core creates for a TCP and select its pods; caches are
// restricted by the managed-by label.
func Labels(tcp *kamajiv1alpha1.TenantControlPlane) map[string]string {
	return map[string]string{
		kamajiv1alpha1.NameLabel:      tcp.Name,
		kamajiv1alpha1.ManagedByLabel: kamajiv1alpha1.ManagedByValue,
	}
}

// withExtra merges user labels or annotations under ours: ours win, so a user label can never
// detach an object from its TCP.
func withExtra(ours, extra map[string]string) map[string]string {
	out := maps.Clone(extra)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, ours)
	return out
}
