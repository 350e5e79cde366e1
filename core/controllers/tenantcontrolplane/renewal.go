package tenantcontrolplane

import (
	"crypto/x509"
	"encoding/pem"
	"time"

	"github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/tenantpki"
)

// renewalMargin puts the requeue just past a renewal deadline, where the certificate is due
// (tenantpki renews when less than the deadline is left, not when exactly that much is).
const renewalMargin = time.Second

// renewalRequeue is how long until the earliest renewal deadline (NotAfter minus the
// --certificate-expiration-deadline, when tenantpki renews) of the certificates this pass kept,
// including those inside kubeconfigs: the TCP is reconciled when a certificate is due rather
// than at the next event or resync. Deadlines already past are certificates the pass could not
// renew (a leaf capped by a DataStore CA that expires first, a paused Secret): requeueing for
// them would loop, so they are left out. The wait is capped at half the renewal deadline, so a
// certificate is renewed with at least half of that margin left whatever the clock did. Zero
// when the pass kept no certificate (it stopped before them). A running CA overlap's end
// counts as a deadline.
func (p *pass) renewalRequeue(renewBefore time.Duration) time.Duration {
	renewBefore = tenantpki.Options{RenewBefore: renewBefore}.WithDefaults().RenewBefore
	limit := renewBefore / 2
	var earliest time.Duration
	seen := false
	consider := func(data map[string][]byte) {
		for _, notAfter := range notAfters(data) {
			seen = true
			if d := notAfter.Add(-renewBefore).Sub(p.now); d > 0 && (earliest == 0 || d < earliest) {
				earliest = d
			}
		}
	}
	for _, data := range p.secrets {
		consider(data)
	}
	consider(p.adminKubeconfig)
	wait := earliest + renewalMargin
	switch {
	case !seen:
		wait = 0
	case earliest == 0 || earliest+renewalMargin > limit:
		wait = limit
	}
	// The end of a CA overlap is due like a certificate: the previous CA must stop being
	// trusted when the annotation says, not at the next event.
	if !p.caOverlapEnd.IsZero() {
		if d := p.caOverlapEnd.Sub(p.now) + renewalMargin; d > 0 && (wait == 0 || d < wait) {
			wait = d
		}
	}
	return wait
}

// notAfters gives the expiry of each certificate in a Secret's data: the first certificate of a
// PEM value (a leaf, a CA; a bundle's first), and the client certificates of a kubeconfig.
func notAfters(data map[string][]byte) []time.Time {
	var out []time.Time
	for _, v := range data {
		if block, _ := pem.Decode(v); block != nil {
			if block.Type != "CERTIFICATE" {
				continue
			}
			if c, err := x509.ParseCertificate(block.Bytes); err == nil {
				out = append(out, c.NotAfter)
			}
			continue
		}
		cfg, err := kubeconfig.Read(v)
		if err != nil {
			continue
		}
		for _, cert := range cfg.ClientCertificates() {
			if c, err := pki.ParseCert(cert); err == nil {
				out = append(out, c.NotAfter)
			}
		}
	}
	return out
}
