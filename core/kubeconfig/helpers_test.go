package kubeconfig

import (
	"bytes"
	"crypto/x509"
	"slices"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/tenantpki"
)

var t0 = time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC)

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func clockAt(d time.Duration) *fakeClock { return &fakeClock{now: t0.Add(d)} }

func newCA(t *testing.T, clock tenantpki.Clock) *pki.KeyPair {
	t.Helper()
	data, _, err := tenantpki.EnsureCA(nil, tenantpki.Options{}, clock)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := tenantpki.LoadKeyPair(data, tenantpki.KeyCACert, tenantpki.KeyCAKey)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// checkKubeconfig loads data with clientcmd.Load and checks that its current context is
// <user>@<cluster>, points at server, trusts ca, and carries a client certificate chaining to
// ca for client auth with the given CN and O.
func checkKubeconfig(t *testing.T, data []byte, ca *pki.KeyPair, cluster, server, cn string, org []string, now time.Time) *x509.Certificate {
	t.Helper()
	cfg, err := clientcmd.Load(data)
	if err != nil {
		t.Fatalf("clientcmd.Load: %v", err)
	}
	if want := cn + "@" + cluster; cfg.CurrentContext != want {
		t.Fatalf("current context %q, want %q", cfg.CurrentContext, want)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	cl, user := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
	if ctx.Cluster != cluster || cl == nil || user == nil {
		t.Fatalf("context %+v does not resolve", ctx)
	}
	if cl.Server != server {
		t.Fatalf("server %q, want %q", cl.Server, server)
	}
	if !bytes.Equal(cl.CertificateAuthorityData, ca.CertPEM()) {
		t.Fatal("CA data is not the tenant CA")
	}
	cert, err := pki.ParseCert(user.ClientCertificateData)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pki.ParseKeyPair(user.ClientCertificateData, user.ClientKeyData); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("client certificate does not chain to the CA: %v", err)
	}
	if cert.Subject.CommonName != cn || !slices.Equal(cert.Subject.Organization, org) {
		t.Fatalf("client CN=%q O=%v, want %q %v", cert.Subject.CommonName, cert.Subject.Organization, cn, org)
	}
	return cert
}

func sameData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(b[k], v) {
			return false
		}
	}
	return true
}
