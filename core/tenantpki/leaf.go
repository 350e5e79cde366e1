package tenantpki

import (
	"crypto/x509"
	"errors"
	"time"

	"github.com/openhcp/kamaji/core/pki"
)

// EnsureLeaf keeps certPEM/keyPEM when they are still what is wanted, or issues a new pair
// signed by ca. Both empty means absent. The checks, in the order that names the Reason:
// unparsable or mismatched key (Invalid), Options.Force (Forced), not signed by ca
// (CARotated, so a CA rotation reissues every leaf), within Options.RenewBefore of NotAfter
// (Expiring), then subject, usages and SANs against want.
func EnsureLeaf(certPEM, keyPEM []byte, ca *pki.KeyPair, want Profile, opts Options, clock Clock) (cert, key []byte, reason Reason, err error) {
	opts, err = opts.prepare()
	if err != nil {
		return nil, nil, "", err
	}
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, nil, "", errors.New("no CA to sign with")
	}
	now := timeOf(clock)
	reason = checkLeaf(certPEM, keyPEM, ca.Cert, want, opts, now)
	if !reason.Changed() {
		return certPEM, keyPEM, Unchanged, nil
	}
	kp, err := issue(ca, want, opts, now)
	if err != nil {
		return nil, nil, "", err
	}
	cert, key, err = encode(kp)
	if err != nil {
		return nil, nil, "", err
	}
	return cert, key, reason, nil
}

func checkLeaf(certPEM, keyPEM []byte, ca *x509.Certificate, want Profile, opts Options, now time.Time) Reason {
	if len(certPEM) == 0 && len(keyPEM) == 0 {
		return Created
	}
	kp, err := pki.ParseKeyPair(certPEM, keyPEM)
	if err != nil || !keyMatches(kp) {
		return Invalid
	}
	if opts.Force {
		return Forced
	}
	if !signedBy(kp.Cert, ca) {
		return CARotated
	}
	if leafExpiring(kp.Cert, ca, opts, now) {
		return Expiring
	}
	if kp.Cert.Subject.CommonName != want.CommonName || !sameStrings(kp.Cert.Subject.Organization, want.Organization) {
		return SubjectChanged
	}
	if !sameUsages(kp.Cert.ExtKeyUsage, want.Usages) {
		return UsagesChanged
	}
	if !sameStrings(kp.Cert.DNSNames, want.DNSNames) || !sameIPs(kp.Cert.IPAddresses, want.IPs) {
		return SANsChanged
	}
	return Unchanged
}

// leafExpiring is true within the renewal deadline, unless a new certificate would not last
// longer: a leaf is capped at its CA's NotAfter, and reissuing under a CA that is itself about
// to expire (a DataStore CA we do not own) would only churn a new certificate every reconcile.
func leafExpiring(cert, ca *x509.Certificate, opts Options, now time.Time) bool {
	return cert.NotAfter.Sub(now) < opts.RenewBefore && leafNotAfter(ca, opts, now).After(cert.NotAfter)
}

func timeOf(c Clock) time.Time {
	if c == nil {
		return SystemClock.Now()
	}
	return c.Now()
}

// ensureLeafSecret applies EnsureLeaf to the two keys of a leaf Secret.
func ensureLeafSecret(current map[string][]byte, certKey, keyKey string, ca *pki.KeyPair, want Profile, opts Options, clock Clock) (map[string][]byte, Reason, error) {
	cert, key, reason, err := EnsureLeaf(current[certKey], current[keyKey], ca, want, opts, clock)
	if err != nil {
		return nil, "", err
	}
	return map[string][]byte{certKey: cert, keyKey: key}, reason, nil
}
