package jointoken

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
)

// testdata/ca.crt's pin, computed with the command kubeadm's documentation gives:
//
//	openssl x509 -pubkey -in ca.crt -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -hex
const caPin = "sha256:ee7f3621ddb66ebfcec6acf0509161da703c94b5f43c066037fc2031115e31bf"

func TestNewTokenFormat(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		tok, err := New()
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(bootstrapapi.BootstrapTokenPattern).MatchString(tok.String()) {
			t.Fatalf("token %q does not match %s", tok, bootstrapapi.BootstrapTokenPattern)
		}
		if seen[tok.String()] {
			t.Fatalf("token %q drawn twice", tok)
		}
		seen[tok.String()] = true
	}
	if _, err := Parse("abcdef.0123456789ABCDEF"); err == nil {
		t.Fatal("upper case accepted")
	}
	if tok, err := Parse("abcdef.0123456789abcdef"); err != nil || tok.ID != "abcdef" || tok.Secret != "0123456789abcdef" {
		t.Fatalf("Parse: %+v %v", tok, err)
	}
}

func TestSecretIsKubeadms(t *testing.T) {
	tok := Token{ID: "abcdef", Secret: "0123456789abcdef"}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	s := Secret(tok, 2*time.Hour, now, "for node-1")
	if s.Name != "bootstrap-token-abcdef" || s.Namespace != "kube-system" || s.Type != "bootstrap.kubernetes.io/token" {
		t.Fatalf("%s/%s type %s", s.Namespace, s.Name, s.Type)
	}
	want := map[string]string{
		"token-id": "abcdef", "token-secret": "0123456789abcdef",
		"usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true",
		"auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
		"expiration":        "2026-11-23T14:00:00Z", "description": "for node-1",
	}
	if len(s.Data) != len(want) {
		t.Errorf("keys %v", s.Data)
	}
	for k, v := range want {
		if string(s.Data[k]) != v {
			t.Errorf("%s = %q, want %q", k, s.Data[k], v)
		}
	}
	forever := Secret(tok, 0, now, "")
	if _, ok := forever.Data["expiration"]; ok {
		t.Error("ttl 0 has an expiration")
	}
	if _, ok := forever.Data["description"]; ok {
		t.Error("empty description written")
	}
}

func TestCAHashesMatchOpenSSL(t *testing.T) {
	ca, err := os.ReadFile("testdata/ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	got, err := CAHashes(ca)
	if err != nil || len(got) != 1 || got[0] != caPin {
		t.Fatalf("CAHashes = %v, %v; want [%s]", got, err, caPin)
	}
	// A bundle (as during a CA rotation) pins each certificate, skipping other PEM blocks.
	bundle := append(append([]byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"), ca...), ca...)
	if got, err := CAHashes(bundle); err != nil || len(got) != 2 {
		t.Fatalf("bundle: %v %v", got, err)
	}
	if _, err := CAHashes([]byte("not pem")); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("garbage: %v", err)
	}
}

func TestCommand(t *testing.T) {
	tok := Token{ID: "abcdef", Secret: "0123456789abcdef"}
	got := Command("10.96.0.7:6443", tok, []string{"sha256:aa", "sha256:bb"})
	want := "kubeadm join 10.96.0.7:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:aa --discovery-token-ca-cert-hash sha256:bb"
	if got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
}
