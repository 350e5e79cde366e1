package tenantpki

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"

	"github.com/openhcp/kamaji/core/pki"
)

// EnsureServiceAccountKey keeps or creates the key pair that signs and verifies the tenant's
// service account tokens (Secret kind ServiceAccount: sa.key, and sa.pub as a PEM PUBLIC KEY).
//
// The key is deliberately never rotated, neither on expiry (it has none), nor on CA rotation,
// nor by Options.Force: kube-apiserver is given a single verification key, so a new key would
// invalidate every token in the tenant at once. It is generated only when sa.key is absent or
// unparsable; deleting the Secret is the way to rotate it. A missing or mismatched sa.pub is
// derived again from the kept sa.key (reason Repaired).
func EnsureServiceAccountKey(current map[string][]byte, opts Options) (map[string][]byte, Reason, error) {
	opts, err := opts.prepare()
	if err != nil {
		return nil, "", err
	}
	keyPEM := current[KeyServiceAccountPrivate]
	var reason Reason
	var key crypto.Signer
	if len(keyPEM) == 0 {
		reason = Created
	} else if key, err = pki.ParseKey(keyPEM); err != nil {
		reason = Invalid
	}
	if reason.Changed() {
		if key, err = pki.NewKey(opts.Algorithm); err != nil {
			return nil, "", err
		}
		if keyPEM, err = pki.EncodeKey(key); err != nil {
			return nil, "", err
		}
	}

	pubPEM := current[KeyServiceAccountPublic]
	if reason.Changed() || !publicKeyPEMMatches(pubPEM, key) {
		if pubPEM, err = EncodePublicKey(key.Public()); err != nil {
			return nil, "", err
		}
		reason = Combine(reason, Repaired)
	}
	if !reason.Changed() {
		reason = Unchanged
	}
	return map[string][]byte{KeyServiceAccountPrivate: keyPEM, KeyServiceAccountPublic: pubPEM}, reason, nil
}

// EncodePublicKey encodes a public key as PEM "PUBLIC KEY" (PKIX), the form kube-apiserver's
// --service-account-key-file reads.
func EncodePublicKey(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// publicKeyPEMMatches compares keys rather than bytes, so an equivalent encoding is kept.
func publicKeyPEMMatches(pubPEM []byte, key crypto.Signer) bool {
	pub, err := parsePublicKey(pubPEM)
	return err == nil && publicKeysEqual(key.Public(), pub)
}

func parsePublicKey(pubPEM []byte) (crypto.PublicKey, error) {
	b, _ := pem.Decode(pubPEM)
	if b == nil {
		return nil, errors.New("no PEM public key found")
	}
	if b.Type == "RSA PUBLIC KEY" {
		return x509.ParsePKCS1PublicKey(b.Bytes)
	}
	return x509.ParsePKIXPublicKey(b.Bytes)
}
