package testkit

import (
	"testing"

	"github.com/openhcp/kamaji/sdk/internal/pki"
)

// KeyPair is a PEM certificate and its PEM private key.
type KeyPair struct {
	Cert []byte
	Key  []byte
}

// NewCA returns a fresh self-signed CA (ECDSA P-256, valid a day).
func NewCA(t testing.TB) KeyPair {
	t.Helper()
	kp, err := pki.NewCA("testkit-ca")
	if err != nil {
		t.Fatal(err)
	}
	return KeyPair(kp)
}

// IssueClient returns a client certificate for cn and orgs signed by ca, as the core issues
// for a tenant apiserver.
func IssueClient(t testing.TB, ca KeyPair, cn string, orgs ...string) KeyPair {
	t.Helper()
	kp, err := pki.Issue(pki.KeyPair(ca), cn, orgs, false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return KeyPair(kp)
}
