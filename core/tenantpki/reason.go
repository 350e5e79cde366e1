package tenantpki

// Reason tells why an Ensure function returned what it returned. The controller turns it into
// a condition reason and an event; Unchanged means there is nothing to write.
type Reason string

const (
	// Unchanged: the current data is kept byte for byte.
	Unchanged Reason = "Unchanged"
	// Created: there was no data; it was generated.
	Created Reason = "Created"
	// Invalid: the data could not be parsed, the key does not match the certificate, or a CA
	// is not a CA; it was regenerated.
	Invalid Reason = "Invalid"
	// Forced: a rotation was asked for (Options.Force).
	Forced Reason = "Forced"
	// CARotated: the certificate is not signed by the current CA.
	CARotated Reason = "CARotated"
	// Expiring: the certificate is within the renewal deadline.
	Expiring Reason = "Expiring"
	// SubjectChanged: the common name or organizations differ from the wanted ones.
	SubjectChanged Reason = "SubjectChanged"
	// UsagesChanged: the extended key usages differ from the wanted ones.
	UsagesChanged Reason = "UsagesChanged"
	// SANsChanged: the DNS names or IPs differ from the wanted ones (a certSAN was added...).
	SANsChanged Reason = "SANsChanged"
	// Repaired: the certificate and key were kept but data derived from them was rewritten
	// (a missing sa.pub, a stale CA copy, a kubeconfig around an unchanged certificate).
	Repaired Reason = "Repaired"
)

// Changed tells whether there is something to write.
func (r Reason) Changed() bool { return r != Unchanged && r != "" }

// Reissued tells whether a new key and certificate were generated (as opposed to kept, or
// kept with rewritten surroundings such as Repaired): the event worth telling the user, and what
// dependents must follow. Other packages may define further non-reissue reasons.
func (r Reason) Reissued() bool {
	switch r {
	case Created, Invalid, Forced, CARotated, Expiring, SubjectChanged, UsagesChanged, SANsChanged:
		return true
	}
	return false
}

// Combine summarises the reasons of the parts of one Secret: the first reissue if any, else the
// first change, else Unchanged.
func Combine(reasons ...Reason) Reason {
	first := Unchanged
	for _, r := range reasons {
		if r.Reissued() {
			return r
		}
		if r.Changed() && first == Unchanged {
			first = r
		}
	}
	return first
}
