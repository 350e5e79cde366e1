package pki

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// NotAfter reads the same expiry as a full parse, for both encodings of X.509 times (UTCTime
// until 2049, GeneralizedTime from 2050) and both key algorithms.
func TestNotAfterAgreesWithX509(t *testing.T) {
	for _, alg := range []Algorithm{ECDSAP256, RSA2048} {
		key, err := NewKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		for _, notAfter := range []time.Time{
			time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC),
			time.Date(2061, time.December, 31, 23, 59, 59, 0, time.UTC),
		} {
			tmpl := &x509.Certificate{
				SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "leaf"},
				NotBefore: time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC), NotAfter: notAfter,
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
			if err != nil {
				t.Fatal(err)
			}
			certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
			full, err := ParseCert(certPEM)
			if err != nil {
				t.Fatal(err)
			}
			got, err := NotAfter(certPEM)
			if err != nil {
				t.Fatalf("%s, %v: %v", alg, notAfter, err)
			}
			if !got.Equal(full.NotAfter) || !got.Equal(notAfter) {
				t.Errorf("%s: NotAfter %v, x509 %v, issued %v", alg, got, full.NotAfter, notAfter)
			}
		}
	}
	ca, err := NewCA("ca", 24*time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := NotAfter(ca.CertPEM()); err != nil || !got.Equal(ca.Cert.NotAfter) {
		t.Errorf("CA: %v %v, want %v", got, err, ca.Cert.NotAfter)
	}
}

func TestNotAfterRefusesWhatIsNoCertificate(t *testing.T) {
	ca, err := NewCA("ca", time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	der := ca.Cert.Raw
	for name, data := range map[string][]byte{
		"not PEM":   []byte("junk"),
		"a key":     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"truncated": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der[:40]}),
		"not DER":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("0123456789")}),
	} {
		if _, err := NotAfter(data); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
