package tenantpki

import (
	"bytes"
	"crypto/rsa"
	"encoding/pem"
	"testing"

	"github.com/openhcp/kamaji/core/pki"
)

func TestServiceAccountKey(t *testing.T) {
	data, r, err := EnsureServiceAccountKey(nil, Options{})
	if err != nil || r != Created {
		t.Fatalf("reason %q err %v", r, err)
	}
	b, _ := pem.Decode(data[KeyServiceAccountPublic])
	if b == nil || b.Type != "PUBLIC KEY" {
		t.Fatalf("sa.pub is not a PEM PUBLIC KEY: %q", data[KeyServiceAccountPublic])
	}
	key, err := pki.ParseKey(data[KeyServiceAccountPrivate])
	if err != nil {
		t.Fatal(err)
	}
	pub, err := parsePublicKey(data[KeyServiceAccountPublic])
	if err != nil || !publicKeysEqual(key.Public(), pub) {
		t.Fatalf("sa.pub does not match sa.key: %v", err)
	}

	// Stable, and not rotated even when forced: a new key would invalidate every token.
	for _, opts := range []Options{{}, {Force: true}} {
		again, r, err := EnsureServiceAccountKey(data, opts)
		if err != nil || r != Unchanged {
			t.Fatalf("force=%v: reason %q err %v", opts.Force, r, err)
		}
		if !bytes.Equal(again[KeyServiceAccountPrivate], data[KeyServiceAccountPrivate]) || !bytes.Equal(again[KeyServiceAccountPublic], data[KeyServiceAccountPublic]) {
			t.Fatal("bytes changed")
		}
	}

	// A lost sa.pub is derived again from the kept key.
	repaired, r, err := EnsureServiceAccountKey(map[string][]byte{KeyServiceAccountPrivate: data[KeyServiceAccountPrivate]}, Options{})
	if err != nil || r != Repaired {
		t.Fatalf("missing sa.pub: reason %q err %v", r, err)
	}
	if !bytes.Equal(repaired[KeyServiceAccountPrivate], data[KeyServiceAccountPrivate]) || !bytes.Equal(repaired[KeyServiceAccountPublic], data[KeyServiceAccountPublic]) {
		t.Fatal("repair did not keep the key or rebuild the same sa.pub")
	}

	// An unparsable key is the only other reason to generate one.
	if _, r, _ := EnsureServiceAccountKey(map[string][]byte{KeyServiceAccountPrivate: []byte("junk")}, Options{}); r != Invalid {
		t.Fatalf("junk sa.key: %q", r)
	}
}

func TestServiceAccountKeyRSA(t *testing.T) {
	data, _, err := EnsureServiceAccountKey(nil, Options{Algorithm: pki.RSA2048})
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := pki.ParseKey(data[KeyServiceAccountPrivate]); k == nil {
		t.Fatal("unparsable")
	} else if _, ok := k.(*rsa.PrivateKey); !ok {
		t.Fatalf("key %T, want RSA", k)
	}
}
