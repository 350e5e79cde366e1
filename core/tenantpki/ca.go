package tenantpki

import (
	"fmt"
	"time"

	"github.com/openhcp/kamaji/core/pki"
)

// Common names of the tenant's CAs, as kubeadm names them.
const (
	CACommonName           = "kubernetes"
	FrontProxyCACommonName = "front-proxy-ca"
)

// EnsureCA keeps or creates the tenant CA (Secret kind CA). A new CA invalidates every leaf
// and kubeconfig, which then report CARotated: when the Reason is neither Unchanged nor
// Created the controller sets status CertificateAuthorityRotating until SignedBy holds for
// every dependent Secret.
//
// The CA is only replaced when absent, invalid (unparsable, key mismatch, not a CA), forced,
// or within the renewal deadline. Its subject is not checked, so a CA the user put in the
// Secret beforehand is adopted as is. Options.Force here means a CA rotation: pass it only when
// the rotation was asked for on the CA Secret itself.
func EnsureCA(current map[string][]byte, opts Options, clock Clock) (map[string][]byte, Reason, error) {
	return ensureCASecret(current, KeyCACert, KeyCAKey, CACommonName, opts, clock)
}

// EnsureFrontProxyCA is EnsureCA for the front-proxy CA (Secret kind FrontProxyCA).
func EnsureFrontProxyCA(current map[string][]byte, opts Options, clock Clock) (map[string][]byte, Reason, error) {
	return ensureCASecret(current, KeyFrontProxyCACert, KeyFrontProxyCAKey, FrontProxyCACommonName, opts, clock)
}

// LoadKeyPair parses the certificate and key stored under certKey and keyKey, such as the CA
// to pass to the leaf Ensure functions: LoadKeyPair(data, KeyCACert, KeyCAKey).
func LoadKeyPair(data map[string][]byte, certKey, keyKey string) (*pki.KeyPair, error) {
	kp, err := pki.ParseKeyPair(data[certKey], data[keyKey])
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", certKey, keyKey, err)
	}
	if !keyMatches(kp) {
		return nil, fmt.Errorf("%s does not match %s", keyKey, certKey)
	}
	return kp, nil
}

func ensureCASecret(current map[string][]byte, certKey, keyKey, cn string, opts Options, clock Clock) (map[string][]byte, Reason, error) {
	opts, err := opts.prepare()
	if err != nil {
		return nil, "", err
	}
	now := timeOf(clock)
	reason := checkCA(current[certKey], current[keyKey], opts, now)
	if !reason.Changed() {
		return map[string][]byte{certKey: current[certKey], keyKey: current[keyKey]}, Unchanged, nil
	}
	kp, err := newCA(cn, opts, now)
	if err != nil {
		return nil, "", err
	}
	cert, key, err := encode(kp)
	if err != nil {
		return nil, "", err
	}
	return map[string][]byte{certKey: cert, keyKey: key}, reason, nil
}

func checkCA(certPEM, keyPEM []byte, opts Options, now time.Time) Reason {
	if len(certPEM) == 0 && len(keyPEM) == 0 {
		return Created
	}
	kp, err := pki.ParseKeyPair(certPEM, keyPEM)
	if err != nil || !keyMatches(kp) || !kp.Cert.IsCA {
		return Invalid
	}
	if opts.Force {
		return Forced
	}
	if kp.Cert.NotAfter.Sub(now) < opts.RenewBefore {
		return Expiring
	}
	return Unchanged
}
