package tenantpki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"time"

	"github.com/openhcp/kamaji/core/pki"
)

// Issuing lives here rather than in pki.NewCA/Issue because validity must come from the
// injected Clock: deciding with one clock and issuing with another would make a certificate
// issued "now" look expiring (or fresh) forever, and tests could not place certificates at a
// chosen time.

// backdate tolerates small clock skew between the manager and the control plane pods.
const backdate = time.Minute

// Profile is what a leaf certificate must say. The Ensure functions build it from the tenant;
// EnsureLeaf takes it directly for certificates owned elsewhere (kubeconfig clients).
type Profile struct {
	CommonName   string
	Organization []string
	DNSNames     []string
	IPs          []net.IP
	Usages       []x509.ExtKeyUsage
}

func newCA(cn string, opts Options, now time.Time) (*pki.KeyPair, error) {
	key, err := pki.NewKey(opts.Algorithm)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(opts.CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return sign(tmpl, tmpl, key, key)
}

func issue(ca *pki.KeyPair, p Profile, opts Options, now time.Time) (*pki.KeyPair, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("no CA to sign with")
	}
	key, err := pki.NewKey(opts.Algorithm)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: p.CommonName, Organization: p.Organization},
		DNSNames:     p.DNSNames,
		IPAddresses:  p.IPs,
		NotBefore:    now.Add(-backdate),
		NotAfter:     leafNotAfter(ca.Cert, opts, now),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  p.Usages,
	}
	return sign(tmpl, ca.Cert, key, ca.Key)
}

// leafNotAfter caps the validity at the CA's: a leaf cannot usefully outlive its issuer.
func leafNotAfter(ca *x509.Certificate, opts Options, now time.Time) time.Time {
	na := now.Add(opts.CertValidity)
	if na.After(ca.NotAfter) {
		na = ca.NotAfter
	}
	return na
}

func sign(tmpl, parent *x509.Certificate, key crypto.Signer, signer crypto.Signer) (*pki.KeyPair, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &pki.KeyPair{Cert: cert, Key: key}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

// encode returns the PEM certificate and key.
func encode(kp *pki.KeyPair) (certPEM, keyPEM []byte, err error) {
	keyPEM, err = kp.KeyPEM()
	if err != nil {
		return nil, nil, err
	}
	return kp.CertPEM(), keyPEM, nil
}
