package tenantpki

import (
	"bytes"
	"testing"
	"time"

	"github.com/openhcp/kamaji/core/pki"
)

func TestEnsureCACreatesAndKeeps(t *testing.T) {
	clock := clockAt(0)
	data, ca := mustCA(t, Options{}, clock)
	if !ca.Cert.IsCA || ca.Cert.Subject.CommonName != CACommonName {
		t.Fatalf("CA: IsCA=%v CN=%q", ca.Cert.IsCA, ca.Cert.Subject.CommonName)
	}
	if got := ca.Cert.NotAfter.Sub(t0); got != DefaultCAValidity {
		t.Fatalf("CA validity %s, want %s", got, DefaultCAValidity)
	}
	again, reason, err := EnsureCA(data, Options{}, clock)
	if err != nil {
		t.Fatal(err)
	}
	if reason != Unchanged || reason.Changed() {
		t.Fatalf("second call: reason %q", reason)
	}
	if !bytes.Equal(again[KeyCACert], data[KeyCACert]) || !bytes.Equal(again[KeyCAKey], data[KeyCAKey]) {
		t.Fatal("second call changed the CA bytes")
	}
}

func TestEnsureCARenewsWithinDeadline(t *testing.T) {
	data, _ := mustCA(t, Options{}, clockAt(0))
	deadline := 48 * time.Hour
	opts := Options{RenewBefore: deadline}
	if _, r, _ := EnsureCA(data, opts, clockAt(DefaultCAValidity-deadline-time.Second)); r != Unchanged {
		t.Fatalf("just before the deadline: %q", r)
	}
	renewed, r, err := EnsureCA(data, opts, clockAt(DefaultCAValidity-deadline+time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if r != Expiring || !r.Reissued() {
		t.Fatalf("inside the deadline: %q, want Expiring", r)
	}
	if bytes.Equal(renewed[KeyCAKey], data[KeyCAKey]) {
		t.Fatal("renewed CA kept its key")
	}
}

func TestEnsureCAInvalid(t *testing.T) {
	clock := clockAt(0)
	_, caKP := mustCA(t, Options{}, clock)
	other, _ := mustCA(t, Options{}, clock)
	leaf, _, err := EnsureAPIServerKubeletClient(nil, caKP, Options{}, clock)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]map[string][]byte{
		"garbage":       {KeyCACert: []byte("nope"), KeyCAKey: []byte("nope")},
		"missing key":   {KeyCACert: caKP.CertPEM()},
		"key mismatch":  {KeyCACert: caKP.CertPEM(), KeyCAKey: other[KeyCAKey]},
		"not a CA cert": {KeyCACert: leaf[KeyAPIServerKubeletClientCert], KeyCAKey: leaf[KeyAPIServerKubeletClientKey]},
	} {
		_, r, err := EnsureCA(data, Options{}, clock)
		if err != nil || r != Invalid {
			t.Errorf("%s: reason %q err %v, want Invalid", name, r, err)
		}
	}
}

// A CA put in the Secret by the user is adopted whatever its subject.
func TestEnsureCAAdoptsUserCA(t *testing.T) {
	user, err := pki.NewCA("my-own-root", 5*365*24*time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := user.KeyPEM()
	data := map[string][]byte{KeyCACert: user.CertPEM(), KeyCAKey: key}
	_, r, err := EnsureCA(data, Options{}, SystemClock)
	if err != nil || r != Unchanged {
		t.Fatalf("user CA: reason %q err %v, want Unchanged", r, err)
	}
}

func TestEnsureCAForced(t *testing.T) {
	clock := clockAt(0)
	data, _ := mustCA(t, Options{}, clock)
	forced, r, err := EnsureCA(data, Options{Force: true}, clock)
	if err != nil || r != Forced {
		t.Fatalf("forced: reason %q err %v", r, err)
	}
	if bytes.Equal(forced[KeyCACert], data[KeyCACert]) {
		t.Fatal("forced rotation kept the CA")
	}
}

func TestFrontProxyCA(t *testing.T) {
	clock := clockAt(0)
	data, r, err := EnsureFrontProxyCA(nil, Options{}, clock)
	if err != nil || r != Created {
		t.Fatalf("reason %q err %v", r, err)
	}
	kp, err := LoadKeyPair(data, KeyFrontProxyCACert, KeyFrontProxyCAKey)
	if err != nil {
		t.Fatal(err)
	}
	if !kp.Cert.IsCA || kp.Cert.Subject.CommonName != FrontProxyCACommonName {
		t.Fatalf("front-proxy CA: IsCA=%v CN=%q", kp.Cert.IsCA, kp.Cert.Subject.CommonName)
	}
	if _, r, _ := EnsureFrontProxyCA(data, Options{}, clock); r != Unchanged {
		t.Fatalf("second call: %q", r)
	}
}
