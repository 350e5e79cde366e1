package controlplane

import (
	"github.com/openhcp/kamaji/core/kubeversion"
)

// The flags the core gives each component, with the first Kubernetes minor that has each one
// (0: every minor of the tested window, v1.30 to v1.37, and older ones): a tenant of an older
// minor does not get a flag its binaries lack. The builder is version-aware through this table.
//
// Every flag below was checked in the sources of each minor of the window (k8s.io/kubernetes
// v1.30.14 to v1.37.2 and their staging modules k8s.io/apiserver, controller-manager,
// cloud-provider, component-base): each is registered from v1.30 on with the same meaning, and
// kubeadm (cmd/kubeadm/app/phases/controlplane/manifests.go, whose flags these are but for
// kube-apiserver's --shutdown-send-retry-after and the profiles' leader election flags, ours)
// sets the same ones from v1.30 to v1.37.
// So every minor of the window gets the same flags today; a flag added to the core must be
// listed here with its minor (TestEveryCoreFlagHasAMinor).
//
// What does change across the window, and is handled where it belongs:
//   - kube-scheduler serves /livez and /readyz from v1.31 (kubeadm probes them from v1.32);
//     /healthz, which the core probes, is served by every minor of the window.
//   - kubeadm reads and writes ClusterConfiguration kubeadm.k8s.io/v1beta3 up to v1.30 and
//     v1beta4 from v1.31 (core/tenant/phases writes kubeadm-config accordingly).
//   - kubeadm's CoreDNS version per minor (the CoreDNS addon plugin's table).
var coreFlags = map[string]map[string]int{
	APIServerContainer: {
		"advertise-address":                  0,
		"allow-privileged":                   0,
		"authorization-mode":                 0,
		"client-ca-file":                     0,
		"enable-admission-plugins":           0,
		"enable-bootstrap-token-auth":        0,
		"etcd-cafile":                        0,
		"etcd-certfile":                      0,
		"etcd-compaction-interval":           0,
		"etcd-keyfile":                       0,
		"etcd-prefix":                        0,
		"etcd-servers":                       0,
		"etcd-servers-overrides":             0,
		"kubelet-client-certificate":         0,
		"kubelet-client-key":                 0,
		"kubelet-preferred-address-types":    0,
		"proxy-client-cert-file":             0,
		"proxy-client-key-file":              0,
		"requestheader-allowed-names":        0,
		"requestheader-client-ca-file":       0,
		"requestheader-extra-headers-prefix": 0,
		"requestheader-group-headers":        0,
		"requestheader-username-headers":     0,
		"secure-port":                        0,
		"service-account-issuer":             0,
		"service-account-key-file":           0,
		"service-account-signing-key-file":   0,
		"service-cluster-ip-range":           0,
		"shutdown-send-retry-after":          0,
		"tls-cert-file":                      0,
		"tls-private-key-file":               0,
	},
	ControllerManagerContainer: {
		"allocate-node-cidrs":              0,
		"authentication-kubeconfig":        0,
		"authorization-kubeconfig":         0,
		"bind-address":                     0,
		"client-ca-file":                   0,
		"cluster-cidr":                     0,
		"cluster-name":                     0,
		"cluster-signing-cert-file":        0,
		"cluster-signing-key-file":         0,
		"controllers":                      0,
		"kubeconfig":                       0,
		"leader-elect":                     0,
		"leader-elect-retry-period":        0,
		"requestheader-client-ca-file":     0,
		"root-ca-file":                     0,
		"service-account-private-key-file": 0,
		"service-cluster-ip-range":         0,
		"use-service-account-credentials":  0,
	},
	SchedulerContainer: {
		"authentication-kubeconfig": 0,
		"authorization-kubeconfig":  0,
		"bind-address":              0,
		"kubeconfig":                0,
		"leader-elect":              0,
		"leader-elect-retry-period": 0,
	},
}

// tenantMinor is the minor the tenant runs; a version the policy cannot read (admission refuses
// it) counts as the newest minor.
func tenantMinor(in Input) int {
	if m, ok := kubeversion.Minor(in.TCP.Spec.Kubernetes.Version); ok {
		return m
	}
	return kubeversion.NewestMinor
}

// forMinor drops from the core's flags of a component those the tenant's minor does not have.
// Only the core's own flags go through it: addons know the version they render for, and the
// user's extra args are the user's.
func forMinor(in Input, component string, args []string) []string {
	since := coreFlags[component]
	minor := tenantMinor(in)
	out := args[:0:0]
	for _, a := range args {
		if since[flagName(a)] > minor {
			continue
		}
		out = append(out, a)
	}
	return out
}
