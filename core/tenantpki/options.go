package tenantpki

import (
	"fmt"
	"time"

	"github.com/openhcp/kamaji/core/pki"
)

// Defaults follow kubeadm: CAs for ten years, everything else for one.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultCertValidity = 365 * 24 * time.Hour
	// DefaultRenewBefore matches the manager's --certificate-expiration-deadline default.
	DefaultRenewBefore = 24 * time.Hour
)

// Options tune issuing and renewal. The zero value is usable: empty fields take the defaults.
type Options struct {
	// Algorithm of newly generated keys; pki.ECDSAP256 when empty. Changing it does not reissue
	// existing certificates (that would rotate every tenant at once); new keys use it.
	Algorithm pki.Algorithm
	// CAValidity is the lifetime of new CAs.
	CAValidity time.Duration
	// CertValidity is the lifetime of new leaf certificates (capped by their CA's NotAfter).
	CertValidity time.Duration
	// RenewBefore is the renewal deadline: a certificate with less than this left is reissued.
	RenewBefore time.Duration
	// Force reissues the certificate whatever its state. The controller sets it for the Secrets
	// a rotation was asked for (certs.kamaji.clastix.io/rotate) and must drop the annotation once
	// the Secret is written, or every reconcile would rotate again.
	Force bool
}

// WithDefaults fills the empty fields.
func (o Options) WithDefaults() Options {
	if o.Algorithm == "" {
		o.Algorithm = pki.ECDSAP256
	}
	if o.CAValidity == 0 {
		o.CAValidity = DefaultCAValidity
	}
	if o.CertValidity == 0 {
		o.CertValidity = DefaultCertValidity
	}
	if o.RenewBefore == 0 {
		o.RenewBefore = DefaultRenewBefore
	}
	return o
}

// Validate rejects options that would make every reconcile reissue: a certificate fresh out of
// issuing must not already be inside its renewal deadline.
func (o Options) Validate() error {
	o = o.WithDefaults()
	if o.RenewBefore < 0 || o.CAValidity < 0 || o.CertValidity < 0 {
		return fmt.Errorf("negative durations are not allowed")
	}
	if o.CertValidity <= o.RenewBefore {
		return fmt.Errorf("certificate validity %s must be longer than the renewal deadline %s", o.CertValidity, o.RenewBefore)
	}
	if o.CAValidity <= o.RenewBefore {
		return fmt.Errorf("CA validity %s must be longer than the renewal deadline %s", o.CAValidity, o.RenewBefore)
	}
	return nil
}

// prepare defaults and validates, for the Ensure functions.
func (o Options) prepare() (Options, error) {
	if err := o.Validate(); err != nil {
		return o, err
	}
	return o.WithDefaults(), nil
}
