package tenantpki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"net"
	"slices"

	"github.com/openhcp/kamaji/core/pki"
)

// SignedBy tells whether the PEM certificate was signed by the PEM CA certificate. The
// controller uses it to know when a CA rotation has reached every dependent Secret.
func SignedBy(certPEM, caCertPEM []byte) bool {
	cert, err := pki.ParseCert(certPEM)
	if err != nil {
		return false
	}
	ca, err := pki.ParseCert(caCertPEM)
	if err != nil {
		return false
	}
	return signedBy(cert, ca)
}

// signedBy checks the signature itself rather than calling CheckSignatureFrom, which also
// demands CA basic constraints: DataStore CAs are provided by users and may be old v1
// certificates that still sign valid leaves.
func signedBy(cert, ca *x509.Certificate) bool {
	return bytes.Equal(cert.RawIssuer, ca.RawSubject) &&
		ca.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) == nil
}

// keyMatches tells whether the private key is the certificate's.
func keyMatches(kp *pki.KeyPair) bool {
	return publicKeysEqual(kp.Key.Public(), kp.Cert.PublicKey)
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// Comparisons are on sets: order and duplicates in a certificate do not make it wrong.

func sameStrings(a, b []string) bool {
	return slices.Equal(normStrings(a), normStrings(b))
}

func normStrings(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

func sameIPs(a, b []net.IP) bool {
	return slices.EqualFunc(normIPs(a), normIPs(b), net.IP.Equal)
}

// normIPs sorts on the 16-byte form so an IPv4 address compares equal in either encoding.
func normIPs(ips []net.IP) []net.IP {
	out := make([]net.IP, 0, len(ips))
	for _, ip := range ips {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		out = append(out, ip)
	}
	slices.SortFunc(out, func(x, y net.IP) int { return bytes.Compare(x.To16(), y.To16()) })
	return slices.CompactFunc(out, net.IP.Equal)
}

func sameUsages(a, b []x509.ExtKeyUsage) bool {
	na, nb := slices.Clone(a), slices.Clone(b)
	slices.Sort(na)
	slices.Sort(nb)
	return slices.Equal(slices.Compact(na), slices.Compact(nb))
}
