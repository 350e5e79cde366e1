package nodeagent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate"
	"k8s.io/client-go/util/certificate/csr"
)

// CAFile in --cert-dir is the CA the node trusts, the one it got at discovery.
const CAFile = "ca.crt"

const userAgent = "kamaji-node-agent"

// Credentials are the node's client certificate, its key and the CA it trusts, all PEM.
type Credentials struct {
	CertPEM, KeyPEM, CAPEM []byte
	CSRName                string
	IssuerCN               string
}

// bootstrapClient authenticates with the bootstrap token, which the apiserver maps to
// system:bootstrap:<id> in system:bootstrappers; kubeadm's RBAC lets that group create CSRs and
// the csrapproving controller approve its kubelet-client CSRs. No request timeout: waiting for
// the certificate is a watch, bounded by the caller's context instead.
func bootstrapClient(server, token string, caPEM []byte) (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(&rest.Config{
		Host:            server,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM},
		UserAgent:       userAgent,
	})
}

// nodeClientCSR makes the key and the CSR a kubelet sends: CN system:node:NAME in O
// system:nodes and no SANs, which is exactly what the approver's kubelet-client recognizer and
// the node authorizer expect.
func nodeClientCSR(nodeName string) (csrPEM []byte, key *ecdsa.PrivateKey, err error) {
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "system:node:" + nodeName, Organization: []string{"system:nodes"}},
	}, key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), key, nil
}

// TLSBootstrap requests a kubelet client certificate with the CSR API and waits until the tenant
// controller manager has approved and signed it (ctx bounds the wait).
func TLSBootstrap(ctx context.Context, client kubernetes.Interface, nodeName string, caPEM []byte) (*Credentials, error) {
	csrPEM, key, err := nodeClientCSR(nodeName)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: key and CSR: %v", err)
	}
	// Usages without key encipherment: an ECDSA key cannot encipher, and the approver accepts
	// {digital signature, client auth} for kubelet client CSRs.
	usages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	name, uid, err := csr.RequestCertificateWithContext(ctx, client, csrPEM, "", certificatesv1.KubeAPIServerClientKubeletSignerName, nil, usages, key)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: create CSR: %v", err)
	}
	certPEM, err := csr.WaitForCertificate(ctx, client, name, uid)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: CSR %s was not approved and signed: %v", name, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	issuer, err := checkIssued(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: CSR %s: %v", name, err)
	}
	return &Credentials{CertPEM: certPEM, KeyPEM: keyPEM, CAPEM: caPEM, CSRName: name, IssuerCN: issuer}, nil
}

// checkIssued makes sure the signed certificate belongs to our key (a mix-up would only show
// later as a confusing TLS failure) and returns its issuer's common name for the progress line.
func checkIssued(certPEM, keyPEM []byte) (issuerCN string, err error) {
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return "", fmt.Errorf("issued certificate does not match the key: %v", err)
	}
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		return "", fmt.Errorf("issued certificate: %v", err)
	}
	return certs[0].Issuer.CommonName, nil
}

// WriteCredentials stores the credentials like a kubelet's, in a private folder: the CA as
// ca.crt, and the pair in the certificate store the renewals go on with
// (kubelet-client-current.pem), as the kubelet's bootstrap leaves it.
func WriteCredentials(dir string, c *Credentials) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--cert-dir: %v", err)
	}
	p := filepath.Join(dir, CAFile)
	if err := os.WriteFile(p, c.CAPEM, 0o644); err != nil {
		return fmt.Errorf("--cert-dir: %v", err)
	}
	// WriteFile keeps the mode of a file that already exists: make it right on a re-run.
	if err := os.Chmod(p, 0o644); err != nil {
		return fmt.Errorf("--cert-dir: %v", err)
	}
	store, err := certificate.NewFileStore(ClientCertPairPrefix, dir, dir, "", "")
	if err != nil {
		return fmt.Errorf("--cert-dir: %v", err)
	}
	if _, err := store.Update(c.CertPEM, c.KeyPEM); err != nil {
		return fmt.Errorf("--cert-dir: %v", err)
	}
	return nil
}
