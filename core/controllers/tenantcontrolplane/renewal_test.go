package tenantcontrolplane

import (
	"testing"
	"time"

	"github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/tenantpki"
)

func TestRenewalRequeue(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	at := clock(func() time.Time { return now })
	ca, _, err := tenantpki.EnsureCA(nil, tenantpki.Options{}, at)
	if err != nil {
		t.Fatal(err)
	}
	caPair, err := tenantpki.LoadKeyPair(ca, tenantpki.KeyCACert, tenantpki.KeyCAKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(validity time.Duration) map[string][]byte {
		d, _, err := tenantpki.EnsureAPIServerKubeletClient(nil, caPair, tenantpki.Options{CertValidity: validity, RenewBefore: time.Hour}, at)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	kubeconfigOf := func(validity time.Duration) map[string][]byte {
		d, _, err := kubeconfig.EnsureScheduler(nil, caPair, "c", "https://127.0.0.1:6443", tenantpki.Options{CertValidity: validity, RenewBefore: time.Hour}, at)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	const deadline = 24 * time.Hour
	for _, tc := range []struct {
		name    string
		secrets map[string]map[string][]byte
		admin   map[string][]byte
		want    time.Duration
	}{
		{"nothing kept: no requeue", nil, nil, 0},
		{"the earliest leaf", map[string]map[string][]byte{"ca": ca, "a": leaf(30 * time.Hour), "b": leaf(40 * time.Hour)}, nil, 6*time.Hour + renewalMargin},
		{"a client certificate inside a kubeconfig", map[string]map[string][]byte{"ca": ca, "a": leaf(40 * time.Hour), "k": kubeconfigOf(27 * time.Hour)}, nil, 3*time.Hour + renewalMargin},
		{"the admin kubeconfig", map[string]map[string][]byte{"a": leaf(40 * time.Hour)}, kubeconfigOf(25 * time.Hour), time.Hour + renewalMargin},
		// Already due after the pass: it could not be renewed (capped, paused); no loop on it.
		{"a deadline already past is left out", map[string]map[string][]byte{"a": leaf(20 * time.Hour), "b": leaf(32 * time.Hour)}, nil, 8*time.Hour + renewalMargin},
		{"only past deadlines: half the deadline", map[string]map[string][]byte{"a": leaf(20 * time.Hour)}, nil, deadline / 2},
		{"capped at half the deadline", map[string]map[string][]byte{"ca": ca, "a": leaf(365 * 24 * time.Hour)}, nil, deadline / 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &pass{now: now, secrets: tc.secrets, adminKubeconfig: tc.admin}
			if got := p.renewalRequeue(deadline); got != tc.want {
				t.Fatalf("requeue after %s, want %s", got, tc.want)
			}
		})
	}
	// A bundle counts by its first certificate; keys and junk are ignored.
	other, err := pki.NewCA("other", time.Hour, pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	a := leaf(30 * time.Hour)
	p := &pass{now: now, secrets: map[string]map[string][]byte{"x": {
		"bundle": append(append([]byte{}, a[tenantpki.KeyAPIServerKubeletClientCert]...), other.CertPEM()...),
		"key":    a[tenantpki.KeyAPIServerKubeletClientKey],
		"junk":   []byte("not: [a kubeconfig"),
	}}}
	if got := p.renewalRequeue(deadline); got != 6*time.Hour+renewalMargin {
		t.Fatalf("requeue after %s, want %s", got, 6*time.Hour+renewalMargin)
	}
}
