// Package controlplane builds the Deployment that runs a tenant's control plane:
// kube-apiserver, kube-controller-manager and kube-scheduler (plus a kine sidecar when the
// datastore is not etcd, and whatever addons contribute) in one pod.
//
// Build is pure: everything it needs (Secret names, datastore endpoints, addon additions, the
// checksum of the Secrets) comes in through Input, so the same Input always yields the same
// object, which the caller server-side applies. Container flags are rebuilt from scratch on
// every call, so a flag removed from the TenantControlPlane disappears from the pod.
package controlplane
