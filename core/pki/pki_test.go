package pki

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"net"
	"testing"
	"time"
)

func TestIssueChainsToCA(t *testing.T) {
	for _, alg := range []Algorithm{"", RSA2048} {
		ca, err := NewCA("test-ca", time.Hour, alg)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := ca.Issue(Request{
			CommonName: "kube-apiserver", DNSNames: []string{"localhost"},
			IPs: []net.IP{net.ParseIP("127.0.0.1")}, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			Validity: 2 * time.Hour, Algorithm: alg,
		})
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(ca.Cert)
		if _, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
			t.Fatalf("%s: leaf does not chain to CA: %v", alg, err)
		}
		if leaf.Cert.NotAfter.After(ca.Cert.NotAfter) {
			t.Fatalf("leaf outlives its CA")
		}
		keyPEM, err := leaf.KeyPEM()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseKeyPair(leaf.CertPEM(), keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		switch back.Key.(type) {
		case *ecdsa.PrivateKey:
			if alg == RSA2048 {
				t.Fatal("RSA requested, got ECDSA")
			}
		case *rsa.PrivateKey:
			if alg != RSA2048 {
				t.Fatal("ECDSA requested, got RSA")
			}
		}
	}
}

func TestUnknownAlgorithm(t *testing.T) {
	if _, err := NewKey("DSA"); err == nil {
		t.Fatal("want an error for an unknown algorithm")
	}
}
