package tenantpki

// Kind identifies one PKI Secret of a TenantControlPlane. Its value is the suffix Kamaji gives
// the Secret name, so Secrets created by Kamaji are adopted as they are.
type Kind string

const (
	CA                     Kind = "ca"
	APIServer              Kind = "api-server-certificate"
	APIServerKubeletClient Kind = "api-server-kubelet-client-certificate"
	FrontProxyCA           Kind = "front-proxy-ca-certificate"
	FrontProxyClient       Kind = "front-proxy-client-certificate"
	ServiceAccount         Kind = "sa-certificate"
	Datastore              Kind = "datastore-certificate"
	Konnectivity           Kind = "konnectivity-certificate"
)

// Kinds lists every PKI Secret kind, CAs first (the order they must be ensured in).
var Kinds = []Kind{CA, FrontProxyCA, ServiceAccount, APIServer, APIServerKubeletClient, FrontProxyClient, Datastore, Konnectivity}

// SecretName is the name of the tenant's Secret of the given kind: "<tcp>-<kind>".
func SecretName(tcpName string, k Kind) string {
	return tcpName + "-" + string(k)
}

// Secret data keys. They are fixed: the Deployment builder mounts them under these file names,
// which are kubeadm's.
const (
	KeyCACert = "ca.crt"
	KeyCAKey  = "ca.key"

	KeyAPIServerCert = "apiserver.crt"
	KeyAPIServerKey  = "apiserver.key"

	KeyAPIServerKubeletClientCert = "apiserver-kubelet-client.crt"
	KeyAPIServerKubeletClientKey  = "apiserver-kubelet-client.key"

	KeyFrontProxyCACert = "front-proxy-ca.crt"
	KeyFrontProxyCAKey  = "front-proxy-ca.key"

	KeyFrontProxyClientCert = "front-proxy-client.crt"
	KeyFrontProxyClientKey  = "front-proxy-client.key"

	KeyServiceAccountPublic  = "sa.pub"
	KeyServiceAccountPrivate = "sa.key"

	// The datastore Secret carries the DataStore's CA next to the client pair, so the pod
	// trusts the datastore it connects to.
	KeyDatastoreCACert = "ca.crt"
	KeyDatastoreCert   = "server.crt"
	KeyDatastoreKey    = "server.key"

	KeyKonnectivityCert = "konnectivity-server.crt"
	KeyKonnectivityKey  = "konnectivity-server.key"
)

// Keys returns the data keys of a Secret kind; Ensure functions return exactly these keys.
func Keys(k Kind) []string {
	switch k {
	case CA:
		return []string{KeyCACert, KeyCAKey}
	case APIServer:
		return []string{KeyAPIServerCert, KeyAPIServerKey}
	case APIServerKubeletClient:
		return []string{KeyAPIServerKubeletClientCert, KeyAPIServerKubeletClientKey}
	case FrontProxyCA:
		return []string{KeyFrontProxyCACert, KeyFrontProxyCAKey}
	case FrontProxyClient:
		return []string{KeyFrontProxyClientCert, KeyFrontProxyClientKey}
	case ServiceAccount:
		return []string{KeyServiceAccountPublic, KeyServiceAccountPrivate}
	case Datastore:
		return []string{KeyDatastoreCACert, KeyDatastoreCert, KeyDatastoreKey}
	case Konnectivity:
		return []string{KeyKonnectivityCert, KeyKonnectivityKey}
	}
	return nil
}
