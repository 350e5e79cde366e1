package tenantpki

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/openhcp/kamaji/core/pki"
)

// A CA rotation with overlap replaces the tenant CA without cutting off what trusts or was
// issued by the old one. While the overlap lasts, the CA Secret holds besides the new pair:
//
//   - ca-previous.crt, the old CA: client certificates it issued (joined kubelets, kubeconfigs
//     users downloaded) are still accepted, because
//   - ca-bundle.crt, the new CA then the old one, is what the control plane trusts for clients
//     (--client-ca-file), publishes to pods (--root-ca-file), and writes into kubeconfigs and
//     cluster-info.
//
// And for as long as the old CA is valid, after the overlap too:
//
//   - ca-cross.crt, the new CA's certificate signed by the old CA, is appended to the serving
//     and kubelet-client certificates, so that a client that only has the old CA (a kubelet's
//     kubelet.conf is written once, at join) still verifies the apiserver, and a kubelet still
//     verifies the apiserver's client certificate. It grants nothing the old CA's holders could
//     not do before: it only lets them verify what the new CA signed.
//
// When the overlap ends the old CA is dropped from ca-bundle.crt (and both keys go): its client
// certificates are refused from then on. The end is the CA Secret's annotation
// CAPreviousUntilAnnotation, which a user may edit.
const (
	KeyCAPreviousCert = "ca-previous.crt"
	KeyCABundle       = "ca-bundle.crt"
	KeyCACrossCert    = "ca-cross.crt"
)

// CAPreviousUntilAnnotation on the CA Secret ends the overlap (RFC 3339). Set when a
// rotation starts, removed when it ends; a time in the past ends it at the next reconcile.
const CAPreviousUntilAnnotation = "kamaji.clastix.io/ca-previous-until"

// OverlapEnded: the previous CA is no longer trusted; the CA itself is unchanged.
const OverlapEnded Reason = "OverlapEnded"

// EnsureCAWithOverlap is EnsureCA for the tenant CA that rotates with overlap: a CA that is
// forced (a rotation request) or expiring is replaced by StartCAOverlap, keeping the old one
// trusted (the Reason is Forced or Expiring, and InOverlap holds for the result); a CA that is
// kept has its overlap brought up to date by KeepCAOverlap against until; an absent or
// unusable CA is replaced outright, as nothing can have trusted it.
func EnsureCAWithOverlap(current map[string][]byte, until time.Time, opts Options, clock Clock) (map[string][]byte, Reason, error) {
	o, err := opts.prepare()
	if err != nil {
		return nil, "", err
	}
	switch reason := checkCA(current[KeyCACert], current[KeyCAKey], o, timeOf(clock)); reason {
	case Forced, Expiring:
		data, err := StartCAOverlap(current, opts, clock)
		return data, reason, err
	case Unchanged:
		data, reason := KeepCAOverlap(current, until, clock)
		return data, reason, nil
	}
	return EnsureCA(current, opts, clock)
}

// StartCAOverlap returns the data of a new tenant CA that keeps trusting the current one,
// whose certificate must parse (its key is needed only to cross-sign, and is not kept). A
// previous CA of an earlier overlap that is still going is dropped: only one is trusted
// besides the current one.
func StartCAOverlap(current map[string][]byte, opts Options, clock Clock) (map[string][]byte, error) {
	old, err := LoadKeyPair(current, KeyCACert, KeyCAKey)
	if err != nil {
		return nil, fmt.Errorf("the CA to rotate from: %w", err)
	}
	opts, err = opts.prepare()
	if err != nil {
		return nil, err
	}
	now := timeOf(clock)
	next, err := newCA(CACommonName, opts, now)
	if err != nil {
		return nil, err
	}
	cross, err := crossSign(next, old, now)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := encode(next)
	if err != nil {
		return nil, err
	}
	oldPEM := old.CertPEM()
	return map[string][]byte{
		KeyCACert:         certPEM,
		KeyCAKey:          keyPEM,
		KeyCAPreviousCert: oldPEM,
		KeyCABundle:       concat(certPEM, oldPEM),
		KeyCACrossCert:    cross.CertPEM(),
	}, nil
}

// crossSign issues next's certificate again (same subject and key), signed by prev and
// valid no longer than prev.
func crossSign(next, prev *pki.KeyPair, now time.Time) (*pki.KeyPair, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               next.Cert.Subject,
		NotBefore:             now.Add(-backdate),
		NotAfter:              next.Cert.NotAfter,
		KeyUsage:              next.Cert.KeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          next.Cert.SubjectKeyId,
	}
	if tmpl.NotAfter.After(prev.Cert.NotAfter) {
		tmpl.NotAfter = prev.Cert.NotAfter
	}
	kp, err := sign(tmpl, prev.Cert, next.Key, prev.Key)
	if err != nil {
		return nil, err
	}
	return &pki.KeyPair{Cert: kp.Cert}, nil
}

// KeepCAOverlap returns the CA data with the overlap keys brought up to date: the previous
// CA dropped once until has passed (zero: no end known, dropped now), and the cross-signed
// certificate dropped once it expired or no longer certifies the current CA's key (the CA was
// replaced some other way). data must hold the current pair; the result holds the CA keys
// only, sharing data's values.
func KeepCAOverlap(data map[string][]byte, until time.Time, clock Clock) (map[string][]byte, Reason) {
	now := timeOf(clock)
	out := map[string][]byte{}
	for _, k := range []string{KeyCACert, KeyCAKey, KeyCAPreviousCert, KeyCABundle, KeyCACrossCert} {
		if v, ok := data[k]; ok {
			out[k] = v
		}
	}
	reason := Unchanged
	if _, ok := out[KeyCAPreviousCert]; ok && !now.Before(until) {
		delete(out, KeyCAPreviousCert)
		reason = OverlapEnded
	}
	if _, ok := out[KeyCAPreviousCert]; ok {
		if want := concat(out[KeyCACert], out[KeyCAPreviousCert]); !bytes.Equal(out[KeyCABundle], want) {
			out[KeyCABundle] = want
			reason = Combine(reason, Repaired)
		}
	} else if _, ok := out[KeyCABundle]; ok {
		delete(out, KeyCABundle)
		reason = Combine(reason, Repaired)
	}
	if cross, ok := out[KeyCACrossCert]; ok && !crossValid(cross, out[KeyCACert], now) {
		delete(out, KeyCACrossCert)
		reason = Combine(reason, Repaired)
	}
	return out, reason
}

func crossValid(crossPEM, caPEM []byte, now time.Time) bool {
	cross, err := pki.ParseCert(crossPEM)
	if err != nil {
		return false
	}
	ca, err := pki.ParseCert(caPEM)
	if err != nil {
		return false
	}
	return now.Before(cross.NotAfter) && bytes.Equal(cross.RawSubjectPublicKeyInfo, ca.RawSubjectPublicKeyInfo)
}

// InOverlap tells whether the CA data still trusts a previous CA.
func InOverlap(data map[string][]byte) bool {
	_, ok := data[KeyCAPreviousCert]
	return ok
}

// TrustBundle is what clients of the tenant and the control plane trust: ca-bundle.crt during
// an overlap, ca.crt otherwise.
func TrustBundle(data map[string][]byte) []byte {
	if b := data[KeyCABundle]; len(b) > 0 && InOverlap(data) {
		return b
	}
	return data[KeyCACert]
}

// WithChain returns certPEM's first certificate followed by chain (nothing when empty): the
// serving and client certificates of the control plane carry the cross-signed CA this way.
func WithChain(certPEM, chain []byte) []byte {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return certPEM // not a certificate: left for EnsureLeaf to call Invalid
	}
	return concat(pem.EncodeToMemory(block), chain)
}

func concat(parts ...[]byte) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		b.Write(p)
		if len(p) > 0 && p[len(p)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// ParseOverlapEnd reads CAPreviousUntilAnnotation's value.
func ParseOverlapEnd(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("annotation %s: %q is not an RFC 3339 time (e.g. 2026-12-02T15:04:05Z)", CAPreviousUntilAnnotation, v)
	}
	return t, nil
}

// LoadCA parses the tenant CA Secret's pair, with the trust bundle of an overlap as its
// Trust: what the leaf Ensure functions sign with and kubeconfigs trust.
func LoadCA(data map[string][]byte) (*pki.KeyPair, error) {
	ca, err := LoadKeyPair(data, KeyCACert, KeyCAKey)
	if err != nil {
		return nil, err
	}
	if InOverlap(data) {
		ca.Trust = TrustBundle(data)
	}
	return ca, nil
}
