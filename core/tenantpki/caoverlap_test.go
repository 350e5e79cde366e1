package tenantpki

import (
	"bytes"
	"crypto/x509"
	"testing"
	"time"

	"github.com/openhcp/kamaji/core/pki"
)

// verifyWithChain verifies a PEM chain (leaf first, then intermediates) against roots, as a TLS
// peer would with what the apiserver presents.
func verifyWithChain(chainPEM []byte, usage x509.ExtKeyUsage, now time.Time, roots ...*x509.Certificate) error {
	certs, err := pki.ParseCerts(chainPEM)
	if err != nil {
		return err
	}
	pool, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err = certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

func TestCAOverlapTrustsBothUntilTheEnd(t *testing.T) {
	clock := clockAt(0)
	oldData, oldCA := mustCA(t, Options{}, clock)
	// A client certificate of the old CA, such as a joined kubelet's.
	kubelet, _, _, err := EnsureLeaf(nil, nil, oldCA, Profile{CommonName: "system:node:n1", Usages: clientAuth}, Options{}, clock)
	if err != nil {
		t.Fatal(err)
	}

	clock.now = t0.Add(time.Hour)
	data, reason, err := EnsureCAWithOverlap(oldData, time.Time{}, Options{Force: true}, clock)
	if err != nil || reason != Forced || !InOverlap(data) {
		t.Fatalf("rotation: reason %q err %v overlap %v", reason, err, InOverlap(data))
	}
	newCA, err := LoadCA(data)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(data[KeyCACert], oldData[KeyCACert]) || !bytes.Equal(data[KeyCAPreviousCert], oldData[KeyCACert]) {
		t.Fatal("ca.crt must be the new CA and ca-previous.crt the old one")
	}
	bundle, err := pki.ParseCerts(TrustBundle(data))
	if err != nil || len(bundle) != 2 || !bundle[0].Equal(newCA.Cert) || !bundle[1].Equal(oldCA.Cert) {
		t.Fatalf("trust bundle: %v %d certificates", err, len(bundle))
	}
	if !bytes.Equal(newCA.TrustPEM(), TrustBundle(data)) {
		t.Error("LoadCA must carry the bundle as the CA's Trust")
	}

	// The serving certificate of the new CA, with the cross-signed CA as its chain: verified by
	// a client holding the old CA only (a kubelet), and by one holding the new CA only.
	serving, _, _, err := EnsureLeaf(nil, nil, newCA, Profile{CommonName: "kube-apiserver", DNSNames: []string{"api"}, Usages: serverAuth}, Options{}, clock)
	if err != nil {
		t.Fatal(err)
	}
	chained := WithChain(serving, data[KeyCACrossCert])
	for name, root := range map[string]*x509.Certificate{"old": oldCA.Cert, "new": newCA.Cert} {
		if err := verifyWithChain(chained, x509.ExtKeyUsageServerAuth, clock.now, root); err != nil {
			t.Errorf("a client trusting the %s CA only: %v", name, err)
		}
	}
	if err := verifyWithChain(serving, x509.ExtKeyUsageServerAuth, clock.now, oldCA.Cert); err == nil {
		t.Error("without the chain the old CA must not verify the new certificate (the test proves nothing otherwise)")
	}
	// The old CA's client certificate verifies against the bundle the apiserver trusts.
	if err := verifyWithChain(kubelet, x509.ExtKeyUsageClientAuth, clock.now, bundle...); err != nil {
		t.Errorf("old client certificate during the overlap: %v", err)
	}

	// Kept as is before the end; the bundle follows a ca.crt edited by hand.
	until := clock.now.Add(24 * time.Hour)
	kept, reason, err := EnsureCAWithOverlap(data, until, Options{}, clock)
	if err != nil || reason != Unchanged || !bytes.Equal(kept[KeyCABundle], data[KeyCABundle]) {
		t.Fatalf("before the end: reason %q err %v", reason, err)
	}

	// After the end: the previous CA and the bundle go, the cross-signed CA stays.
	clock.now = until
	ended, reason, err := EnsureCAWithOverlap(data, until, Options{}, clock)
	if err != nil || reason != OverlapEnded || reason.Reissued() {
		t.Fatalf("at the end: reason %q err %v", reason, err)
	}
	if InOverlap(ended) || ended[KeyCABundle] != nil || !bytes.Equal(ended[KeyCACert], data[KeyCACert]) || !bytes.Equal(ended[KeyCACrossCert], data[KeyCACrossCert]) {
		t.Fatalf("after the end the Secret holds %v", keysOf(ended))
	}
	if !bytes.Equal(TrustBundle(ended), data[KeyCACert]) {
		t.Error("after the end only the new CA is trusted")
	}
	if err := verifyWithChain(kubelet, x509.ExtKeyUsageClientAuth, clock.now, mustCert(t, TrustBundle(ended))); err == nil {
		t.Error("the old CA's client certificate still verifies after the end")
	}
	if err := verifyWithChain(chained, x509.ExtKeyUsageServerAuth, clock.now, oldCA.Cert); err != nil {
		t.Errorf("a client trusting the old CA only, after the end: %v", err)
	}

	// The cross-signed CA goes when it expires (with the old CA).
	clock.now = oldCA.Cert.NotAfter.Add(time.Second)
	late, reason := KeepCAOverlap(ended, time.Time{}, clock)
	if reason != Repaired || late[KeyCACrossCert] != nil {
		t.Fatalf("after the old CA's expiry: reason %q keys %v", reason, keysOf(late))
	}
}

func TestCAOverlapOnlyWhereSomethingTrustedTheOldCA(t *testing.T) {
	clock := clockAt(0)
	// Absent: created outright.
	data, reason, err := EnsureCAWithOverlap(nil, time.Time{}, Options{}, clock)
	if err != nil || reason != Created || InOverlap(data) || data[KeyCACrossCert] != nil {
		t.Fatalf("created: reason %q err %v keys %v", reason, err, keysOf(data))
	}
	// Expiring: rotated with overlap, like a request.
	clock.now = t0.Add(DefaultCAValidity - time.Hour)
	renewed, reason, err := EnsureCAWithOverlap(data, time.Time{}, Options{}, clock)
	if err != nil || reason != Expiring || !InOverlap(renewed) {
		t.Fatalf("expiring: reason %q err %v overlap %v", reason, err, InOverlap(renewed))
	}
	// A second rotation during an overlap trusts only the CA it replaces.
	again, _, err := EnsureCAWithOverlap(renewed, clock.now.Add(time.Hour), Options{Force: true}, clock)
	if err != nil {
		t.Fatal(err)
	}
	if certs, _ := pki.ParseCerts(TrustBundle(again)); len(certs) != 2 || !bytes.Equal(again[KeyCAPreviousCert], renewed[KeyCACert]) {
		t.Fatalf("second rotation trusts %d CAs", len(certs))
	}
	// Unusable: replaced outright (nothing can have trusted it).
	junk := map[string][]byte{KeyCACert: []byte("junk"), KeyCAKey: []byte("junk")}
	fresh, reason, err := EnsureCAWithOverlap(junk, time.Time{}, Options{}, clock)
	if err != nil || reason != Invalid || InOverlap(fresh) {
		t.Fatalf("invalid: reason %q err %v", reason, err)
	}
	// Keys the CA Secret does not own are not carried over.
	withJunk := map[string][]byte{KeyCACert: data[KeyCACert], KeyCAKey: data[KeyCAKey], "other": []byte("x")}
	if out, _ := KeepCAOverlap(withJunk, time.Time{}, clock); out["other"] != nil {
		t.Error("KeepCAOverlap kept a foreign key")
	}
}

func TestWithChainAndOverlapEnd(t *testing.T) {
	clock := clockAt(0)
	_, ca := mustCA(t, Options{}, clock)
	leaf, _, _, err := EnsureLeaf(nil, nil, ca, Profile{CommonName: "x", Usages: clientAuth}, Options{}, clock)
	if err != nil {
		t.Fatal(err)
	}
	chained := WithChain(leaf, ca.CertPEM())
	if again := WithChain(chained, ca.CertPEM()); !bytes.Equal(again, chained) {
		t.Error("WithChain is not idempotent")
	}
	if plain := WithChain(chained, nil); !bytes.Equal(plain, leaf) {
		t.Error("WithChain with no chain must give the leaf alone")
	}
	if _, err := ParseOverlapEnd("tomorrow"); err == nil || !bytes.Contains([]byte(err.Error()), []byte(CAPreviousUntilAnnotation)) {
		t.Errorf("a bad end must name the annotation: %v", err)
	}
	if end, err := ParseOverlapEnd("2030-01-02T00:00:00Z"); err != nil || !end.Equal(t0.Add(24*time.Hour)) {
		t.Errorf("end %v %v", end, err)
	}
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
