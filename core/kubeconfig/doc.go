// Package kubeconfig builds the kubeconfig Secrets of a TenantControlPlane: admin (public
// endpoint and in-admin-cluster Service variants), controller-manager and scheduler.
//
// Like tenantpki, the Ensure functions are pure: current Secret data in, data to write and a
// tenantpki.Reason out, with the current bytes returned untouched (Reason Unchanged) when the
// embedded client certificate is still good and the kubeconfig around it is what would be
// built today. Certificate policy (expiry, CA, subject, forced rotation) is tenantpki's.
package kubeconfig
