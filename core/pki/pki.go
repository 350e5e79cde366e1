// Package pki issues the certificates and keys of a tenant control plane (and of the test
// planes): CAs, serving and client certificates. ECDSA P-256 by default because RSA-2048 key
// generation dominates provisioning time; RSA is available when a consumer needs it.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Algorithm is a key algorithm, named as kubeadm's encryptionAlgorithm.
type Algorithm string

const (
	ECDSAP256 Algorithm = "ECDSA-P256"
	RSA2048   Algorithm = "RSA-2048"
	RSA3072   Algorithm = "RSA-3072"
	RSA4096   Algorithm = "RSA-4096"
)

// NewKey generates a private key with the given algorithm (ECDSA P-256 when empty).
func NewKey(alg Algorithm) (crypto.Signer, error) {
	switch alg {
	case "", ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	}
	return nil, fmt.Errorf("unknown key algorithm %q", alg)
}

// KeyPair is a certificate with its private key.
type KeyPair struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Trust, for a CA, is the PEM bundle its clients should trust when it is more than Cert:
	// during a CA rotation, the new CA and the previous one. Empty: Cert alone.
	Trust []byte
}

// Request describes a certificate to issue.
type Request struct {
	CommonName   string
	Organization []string
	DNSNames     []string
	IPs          []net.IP
	// Usages: ExtKeyUsageServerAuth and/or ExtKeyUsageClientAuth.
	Usages    []x509.ExtKeyUsage
	Validity  time.Duration
	Algorithm Algorithm
	// PublicKey, when set, is certified instead of a newly generated key (signing a CSR).
	PublicKey crypto.PublicKey
}

// Now is the clock used for NotBefore; tests replace it to issue certificates "in the past".
var Now = time.Now

// NewCA creates a self-signed CA.
func NewCA(cn string, validity time.Duration, alg Algorithm) (*KeyPair, error) {
	key, err := NewKey(alg)
	if err != nil {
		return nil, err
	}
	now := Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &KeyPair{Cert: cert, Key: key}, nil
}

// Issue signs a certificate for the request with this CA. When the request carries a public
// key, the returned pair has a nil Key.
func (ca *KeyPair) Issue(req Request) (*KeyPair, error) {
	if !ca.Cert.IsCA {
		return nil, errors.New("issuer is not a CA")
	}
	var key crypto.Signer
	pub := req.PublicKey
	if pub == nil {
		var err error
		if key, err = NewKey(req.Algorithm); err != nil {
			return nil, err
		}
		pub = key.Public()
	}
	now := Now()
	notAfter := now.Add(req.Validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: req.CommonName, Organization: req.Organization},
		DNSNames:     req.DNSNames,
		IPAddresses:  req.IPs,
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  req.Usages,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &KeyPair{Cert: cert, Key: key}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return n
}

// CertPEM encodes the certificate.
func (kp *KeyPair) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kp.Cert.Raw})
}

// TrustPEM is what a client of this CA should trust: Trust when set, else the certificate.
func (kp *KeyPair) TrustPEM() []byte {
	if len(kp.Trust) > 0 {
		return kp.Trust
	}
	return kp.CertPEM()
}

// KeyPEM encodes the private key (PKCS#8 for ECDSA, PKCS#1 for RSA, as kubeadm writes them).
func (kp *KeyPair) KeyPEM() ([]byte, error) {
	return EncodeKey(kp.Key)
}

// EncodeKey encodes a private key to PEM.
func EncodeKey(key crypto.Signer) ([]byte, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
	}
	return nil, fmt.Errorf("unsupported key type %T", key)
}

// ParseKeyPair decodes a PEM certificate and private key.
func ParseKeyPair(certPEM, keyPEM []byte) (*KeyPair, error) {
	cert, err := ParseCert(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	return &KeyPair{Cert: cert, Key: key}, nil
}

// ParseCert decodes the first PEM certificate.
func ParseCert(certPEM []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate found")
	}
	return x509.ParseCertificate(b.Bytes)
}

// NotAfter reads only the expiry of a PEM certificate, walking its DER to the validity: the
// metrics read thousands at their first scrape, and a full parse allocates some 4 KB each, which
// the collector could not keep up with (the manager's memory rose by tens of MB at 1,000 TCPs).
// It does not check the rest of the certificate.
func NotAfter(certPEM []byte) (time.Time, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return time.Time{}, errors.New("no PEM certificate found")
	}
	der := cryptobyte.String(b.Bytes)
	var cert, tbs, validity cryptobyte.String
	var notBefore, notAfter time.Time
	if !der.ReadASN1(&cert, cbasn1.SEQUENCE) || !cert.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) || // version
		!tbs.SkipASN1(cbasn1.INTEGER) || // serial number
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // signature algorithm
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // issuer
		!tbs.ReadASN1(&validity, cbasn1.SEQUENCE) ||
		!readTime(&validity, &notBefore) || !readTime(&validity, &notAfter) {
		return time.Time{}, errors.New("malformed certificate: no validity")
	}
	return notAfter, nil
}

// readTime reads an X.509 Time: UTCTime before 2050, GeneralizedTime from then (RFC 5280).
func readTime(s *cryptobyte.String, t *time.Time) bool {
	if s.PeekASN1Tag(cbasn1.UTCTime) {
		return s.ReadASN1UTCTime(t)
	}
	return s.ReadASN1GeneralizedTime(t)
}

// ParseCerts decodes every PEM certificate of a bundle or chain, in order; none is an error.
func ParseCerts(bundle []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := bundle; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return out, nil
}

// ParseKey decodes a PEM private key (PKCS#1, SEC1 or PKCS#8).
func ParseKey(keyPEM []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, errors.New("no PEM private key found")
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("unsupported private key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
	return s, nil
}
