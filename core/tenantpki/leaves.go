package tenantpki

import (
	"bytes"
	"crypto/x509"
	"errors"
	"net"

	"github.com/openhcp/kamaji/core/pki"
)

// Subjects of the leaf certificates, kubeadm's where kubeadm has them.
const (
	APIServerCommonName              = "kube-apiserver"
	APIServerKubeletClientCommonName = "kube-apiserver-kubelet-client"
	FrontProxyClientCommonName       = "front-proxy-client"
	// KonnectivityCommonName is the user konnectivity-server authenticates as against the
	// apiserver (the Kubernetes konnectivity setup guide's name).
	KonnectivityCommonName = "system:konnectivity-server"
	// MastersGroup bypasses authorization: the apiserver must reach every kubelet even before
	// the tenant's RBAC is bootstrapped.
	MastersGroup = "system:masters"
)

var (
	serverAuth = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	clientAuth = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
)

// SANs are the subject alternative names of a serving certificate.
type SANs struct {
	DNSNames []string
	IPs      []net.IP
}

// EnsureAPIServer keeps or issues kube-apiserver's serving certificate, signed by the tenant
// CA, for sans (see APIServerSANs).
func EnsureAPIServer(current map[string][]byte, ca *pki.KeyPair, sans SANs, opts Options, clock Clock) (map[string][]byte, Reason, error) {
	return ensureLeafSecret(current, KeyAPIServerCert, KeyAPIServerKey, ca, Profile{
		CommonName: APIServerCommonName,
		DNSNames:   sans.DNSNames,
		IPs:        sans.IPs,
		Usages:     serverAuth,
	}, opts, clock)
}

// EnsureAPIServerKubeletClient keeps or issues the client certificate kube-apiserver presents
// to kubelets, signed by the tenant CA.
func EnsureAPIServerKubeletClient(current map[string][]byte, ca *pki.KeyPair, opts Options, clock Clock) (map[string][]byte, Reason, error) {
	return ensureLeafSecret(current, KeyAPIServerKubeletClientCert, KeyAPIServerKubeletClientKey, ca, Profile{
		CommonName:   APIServerKubeletClientCommonName,
		Organization: []string{MastersGroup},
		Usages:       clientAuth,
	}, opts, clock)
}

// EnsureFrontProxyClient keeps or issues the aggregation-layer client certificate, signed by
// the front-proxy CA (not the tenant CA: extension apiservers trust only the front-proxy CA
// for requestheader authentication).
func EnsureFrontProxyClient(current map[string][]byte, frontProxyCA *pki.KeyPair, opts Options, clock Clock) (map[string][]byte, Reason, error) {
	return ensureLeafSecret(current, KeyFrontProxyClientCert, KeyFrontProxyClientKey, frontProxyCA, Profile{
		CommonName: FrontProxyClientCommonName,
		Usages:     clientAuth,
	}, opts, clock)
}

// EnsureKonnectivity keeps or issues the konnectivity-server certificate, signed by the tenant
// CA. konnectivity-server uses it as a client of the apiserver (CN system:konnectivity-server)
// and it is also valid for serving on sans, so the Deployment builder may present it to agents;
// pass nil SANs when it is only used as a client.
func EnsureKonnectivity(current map[string][]byte, ca *pki.KeyPair, sans SANs, opts Options, clock Clock) (map[string][]byte, Reason, error) {
	return ensureLeafSecret(current, KeyKonnectivityCert, KeyKonnectivityKey, ca, Profile{
		CommonName: KonnectivityCommonName,
		DNSNames:   sans.DNSNames,
		IPs:        sans.IPs,
		Usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, opts, clock)
}

// EnsureDatastoreClient keeps or issues the certificate the control plane presents to its
// DataStore, signed by the DataStore's CA, with the common name and organizations the
// datastore driver asked for. The Secret also carries the DataStore CA (ca.crt: the CA's
// TrustPEM, so a bundle is carried whole); when only that copy is stale (the CA was renewed with the same key, so the leaf still verifies) it is
// rewritten with reason Repaired.
func EnsureDatastoreClient(current map[string][]byte, datastoreCA *pki.KeyPair, commonName string, organization []string, opts Options, clock Clock) (map[string][]byte, Reason, error) {
	if commonName == "" {
		return nil, "", errors.New("datastore client certificate: empty common name")
	}
	data, reason, err := ensureLeafSecret(current, KeyDatastoreCert, KeyDatastoreKey, datastoreCA, Profile{
		CommonName:   commonName,
		Organization: organization,
		Usages:       clientAuth,
	}, opts, clock)
	if err != nil {
		return nil, "", err
	}
	caPEM := datastoreCA.TrustPEM()
	if !bytes.Equal(current[KeyDatastoreCACert], caPEM) {
		reason = Combine(reason, Repaired)
	} else {
		caPEM = current[KeyDatastoreCACert]
	}
	data[KeyDatastoreCACert] = caPEM
	return data, reason, nil
}
