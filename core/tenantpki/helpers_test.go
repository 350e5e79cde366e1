package tenantpki

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/openhcp/kamaji/core/pki"
)

// t0 is an arbitrary fixed instant; every test places certificates relative to it.
var t0 = time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC)

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func clockAt(d time.Duration) *fakeClock { return &fakeClock{now: t0.Add(d)} }

func mustCA(t *testing.T, opts Options, clock Clock) (map[string][]byte, *pki.KeyPair) {
	t.Helper()
	data, reason, err := EnsureCA(nil, opts, clock)
	if err != nil {
		t.Fatal(err)
	}
	if reason != Created {
		t.Fatalf("reason %q, want Created", reason)
	}
	kp, err := LoadKeyPair(data, KeyCACert, KeyCAKey)
	if err != nil {
		t.Fatal(err)
	}
	return data, kp
}

func mustCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	c, err := pki.ParseCert(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// verifyChain checks with x509.Verify that the leaf chains to ca for usage at the clock's time,
// and, when names are given, that it is valid for each of them.
func verifyChain(t *testing.T, leafPEM []byte, ca *x509.Certificate, usage x509.ExtKeyUsage, now time.Time, names ...string) *x509.Certificate {
	t.Helper()
	leaf := mustCert(t, leafPEM)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	opts := x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}
	if _, err := leaf.Verify(opts); err != nil {
		t.Fatalf("%s does not chain to %s for usage %v: %v", leaf.Subject.CommonName, ca.Subject.CommonName, usage, err)
	}
	for _, n := range names {
		opts.DNSName = n
		if _, err := leaf.Verify(opts); err != nil {
			t.Errorf("%s not valid for %q: %v", leaf.Subject.CommonName, n, err)
		}
	}
	return leaf
}
