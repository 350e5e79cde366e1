// Package tenantpki decides, certificate by certificate, what the PKI Secrets of a
// TenantControlPlane must contain, and issues what is missing.
//
// Every Ensure function is pure: it takes the current Secret data (nil when the Secret does not
// exist), the issuing CA, the wanted content, Options and a Clock, and returns the data to write
// with a Reason. When nothing has to change the returned bytes are the current ones and the
// Reason is Unchanged, so a reconcile that finds nothing to do writes nothing and the pod
// template checksum (Checksum) does not move. The controller owns the I/O: reading Secrets,
// writing them, setting conditions and emitting events from the Reason.
package tenantpki
