package tenantpki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"maps"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/openhcp/kamaji/core/pki"
)

func TestLeavesChainWithExpectedSubjectsAndUsages(t *testing.T) {
	clock := clockAt(0)
	_, ca := mustCA(t, Options{}, clock)
	fpData, _, err := EnsureFrontProxyCA(nil, Options{}, clock)
	if err != nil {
		t.Fatal(err)
	}
	fpCA, _ := LoadKeyPair(fpData, KeyFrontProxyCACert, KeyFrontProxyCAKey)
	dsCA, err := newCA("datastore-ca", Options{}.WithDefaults(), t0)
	if err != nil {
		t.Fatal(err)
	}
	sans := SANs{DNSNames: []string{"localhost", "tenant.example.com"}, IPs: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")}}

	type leafCase struct {
		ensure  func(map[string][]byte) (map[string][]byte, Reason, error)
		certKey string
		keyKey  string
		issuer  *pki.KeyPair
		cn      string
		org     []string
		usages  []x509.ExtKeyUsage
		names   []string
	}
	cases := map[string]leafCase{
		"apiserver": {
			ensure: func(c map[string][]byte) (map[string][]byte, Reason, error) {
				return EnsureAPIServer(c, ca, sans, Options{}, clock)
			},
			certKey: KeyAPIServerCert, keyKey: KeyAPIServerKey, issuer: ca, cn: "kube-apiserver",
			usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, names: []string{"localhost", "tenant.example.com", "127.0.0.1", "10.96.0.1"},
		},
		"apiserver-kubelet-client": {
			ensure: func(c map[string][]byte) (map[string][]byte, Reason, error) {
				return EnsureAPIServerKubeletClient(c, ca, Options{}, clock)
			},
			certKey: KeyAPIServerKubeletClientCert, keyKey: KeyAPIServerKubeletClientKey, issuer: ca, cn: "kube-apiserver-kubelet-client",
			org: []string{"system:masters"}, usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		},
		"front-proxy-client": {
			ensure: func(c map[string][]byte) (map[string][]byte, Reason, error) {
				return EnsureFrontProxyClient(c, fpCA, Options{}, clock)
			},
			certKey: KeyFrontProxyClientCert, keyKey: KeyFrontProxyClientKey, issuer: fpCA, cn: "front-proxy-client",
			usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		},
		"konnectivity": {
			ensure: func(c map[string][]byte) (map[string][]byte, Reason, error) {
				return EnsureKonnectivity(c, ca, sans, Options{}, clock)
			},
			certKey: KeyKonnectivityCert, keyKey: KeyKonnectivityKey, issuer: ca, cn: "system:konnectivity-server",
			usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, names: []string{"tenant.example.com"},
		},
		"datastore": {
			ensure: func(c map[string][]byte) (map[string][]byte, Reason, error) {
				return EnsureDatastoreClient(c, dsCA, "tenant-user", []string{"tenants"}, Options{}, clock)
			},
			certKey: KeyDatastoreCert, keyKey: KeyDatastoreKey, issuer: dsCA, cn: "tenant-user",
			org: []string{"tenants"}, usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			data, r, err := c.ensure(nil)
			if err != nil || r != Created {
				t.Fatalf("reason %q err %v", r, err)
			}
			for _, u := range c.usages {
				leaf := verifyChain(t, data[c.certKey], c.issuer.Cert, u, clock.now, c.names...)
				if leaf.Subject.CommonName != c.cn || !slices.Equal(leaf.Subject.Organization, c.org) {
					t.Fatalf("subject CN=%q O=%v, want %q %v", leaf.Subject.CommonName, leaf.Subject.Organization, c.cn, c.org)
				}
				if !sameUsages(leaf.ExtKeyUsage, c.usages) {
					t.Fatalf("usages %v, want %v", leaf.ExtKeyUsage, c.usages)
				}
				if got := leaf.NotAfter.Sub(t0); got != DefaultCertValidity {
					t.Fatalf("validity %s, want %s", got, DefaultCertValidity)
				}
				if _, ok := mustKey(t, data[c.keyKey]).(*ecdsa.PrivateKey); !ok {
					t.Fatal("default key is not ECDSA")
				}
			}
			if len(data) != len(Keys(kindOf(c.certKey))) {
				t.Fatalf("returned keys %v", slices.Sorted(maps.Keys(data)))
			}
			// Nothing changed: the same bytes and Unchanged.
			again, r, err := c.ensure(data)
			if err != nil || r != Unchanged {
				t.Fatalf("second call: reason %q err %v", r, err)
			}
			for k, v := range data {
				if !bytes.Equal(again[k], v) {
					t.Fatalf("second call changed %s", k)
				}
			}
		})
	}
}

func TestRSASelectable(t *testing.T) {
	clock := clockAt(0)
	opts := Options{Algorithm: pki.RSA2048}
	caData, ca := mustCA(t, opts, clock)
	if _, ok := ca.Key.(*rsa.PrivateKey); !ok {
		t.Fatalf("CA key %T, want RSA", ca.Key)
	}
	data, _, err := EnsureAPIServer(nil, ca, SANs{DNSNames: []string{"localhost"}}, opts, clock)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mustKey(t, data[KeyAPIServerKey]).(*rsa.PrivateKey); !ok {
		t.Fatal("leaf key is not RSA")
	}
	verifyChain(t, data[KeyAPIServerCert], mustCert(t, caData[KeyCACert]), x509.ExtKeyUsageServerAuth, clock.now, "localhost")
}

func TestLeafRenewalDeadline(t *testing.T) {
	_, ca := mustCA(t, Options{}, clockAt(0))
	data, _, err := EnsureAPIServerKubeletClient(nil, ca, Options{}, clockAt(0))
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{RenewBefore: 72 * time.Hour}
	before := clockAt(DefaultCertValidity - 72*time.Hour - time.Second)
	if kept, r, _ := EnsureAPIServerKubeletClient(data, ca, opts, before); r != Unchanged || !bytes.Equal(kept[KeyAPIServerKubeletClientCert], data[KeyAPIServerKubeletClientCert]) {
		t.Fatalf("before the deadline: %q", r)
	}
	inside := clockAt(DefaultCertValidity - 72*time.Hour + time.Second)
	renewed, r, err := EnsureAPIServerKubeletClient(data, ca, opts, inside)
	if err != nil || r != Expiring {
		t.Fatalf("inside the deadline: reason %q err %v", r, err)
	}
	leaf := verifyChain(t, renewed[KeyAPIServerKubeletClientCert], ca.Cert, x509.ExtKeyUsageClientAuth, inside.now)
	if !leaf.NotAfter.Equal(inside.now.Add(DefaultCertValidity)) {
		t.Fatalf("renewed NotAfter %s", leaf.NotAfter)
	}
	// Already expired certificates are renewed too.
	if _, r, _ := EnsureAPIServerKubeletClient(data, ca, opts, clockAt(2*DefaultCertValidity)); r != Expiring {
		t.Fatalf("expired: %q", r)
	}
}

// A leaf capped at a DataStore CA that is about to expire is not reissued on every reconcile:
// a new one could not last longer.
func TestNoChurnUnderExpiringIssuer(t *testing.T) {
	dsCA, err := newCA("datastore-ca", Options{CAValidity: 10 * 24 * time.Hour}.WithDefaults(), t0)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{RenewBefore: 30 * 24 * time.Hour, CAValidity: 40 * 24 * time.Hour}
	data, r, err := EnsureDatastoreClient(nil, dsCA, "u", nil, opts, clockAt(0))
	if err != nil || r != Created {
		t.Fatalf("reason %q err %v", r, err)
	}
	if leaf := mustCert(t, data[KeyDatastoreCert]); !leaf.NotAfter.Equal(dsCA.Cert.NotAfter) {
		t.Fatalf("leaf NotAfter %s not capped at the CA's %s", leaf.NotAfter, dsCA.Cert.NotAfter)
	}
	if _, r, _ := EnsureDatastoreClient(data, dsCA, "u", nil, opts, clockAt(time.Hour)); r != Unchanged {
		t.Fatalf("reissued under an expiring CA: %q", r)
	}
}

func TestSANChangeReissues(t *testing.T) {
	clock := clockAt(0)
	_, ca := mustCA(t, Options{}, clock)
	tcp := testTCP()
	data, _, err := EnsureAPIServer(nil, ca, APIServerSANs(tcp, "tenant", "10.0.0.5"), Options{}, clock)
	if err != nil {
		t.Fatal(err)
	}
	// The same SANs computed again (any order) keep the certificate.
	if _, r, _ := EnsureAPIServer(data, ca, APIServerSANs(tcp, "tenant", "10.0.0.5"), Options{}, clock); r != Unchanged {
		t.Fatalf("same SANs: %q", r)
	}
	tcp.Spec.NetworkProfile.CertSANs = append(tcp.Spec.NetworkProfile.CertSANs, "new.example.com")
	renewed, r, err := EnsureAPIServer(data, ca, APIServerSANs(tcp, "tenant", "10.0.0.5"), Options{}, clock)
	if err != nil || r != SANsChanged {
		t.Fatalf("certSAN added: reason %q err %v", r, err)
	}
	verifyChain(t, renewed[KeyAPIServerCert], ca.Cert, x509.ExtKeyUsageServerAuth, clock.now, "new.example.com")
}

func TestSubjectAndUsageChangesReissue(t *testing.T) {
	clock := clockAt(0)
	_, ca := mustCA(t, Options{}, clock)
	want := Profile{CommonName: "a", Usages: clientAuth}
	cert, key, _, err := EnsureLeaf(nil, nil, ca, want, Options{}, clock)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		p    Profile
		want Reason
	}{
		"same":         {Profile{CommonName: "a", Usages: clientAuth}, Unchanged},
		"other CN":     {Profile{CommonName: "b", Usages: clientAuth}, SubjectChanged},
		"other O":      {Profile{CommonName: "a", Organization: []string{"g"}, Usages: clientAuth}, SubjectChanged},
		"other usages": {Profile{CommonName: "a", Usages: serverAuth}, UsagesChanged},
		"new IP SAN":   {Profile{CommonName: "a", Usages: clientAuth, IPs: []net.IP{net.ParseIP("10.0.0.1")}}, SANsChanged},
	} {
		if _, _, r, err := EnsureLeaf(cert, key, ca, c.p, Options{}, clock); err != nil || r != c.want {
			t.Errorf("%s: reason %q err %v, want %q", name, r, err, c.want)
		}
	}
}

func TestCARotationReissuesLeaves(t *testing.T) {
	clock := clockAt(0)
	caData, ca := mustCA(t, Options{}, clock)
	data, _, err := EnsureAPIServerKubeletClient(nil, ca, Options{}, clock)
	if err != nil {
		t.Fatal(err)
	}
	if !SignedBy(data[KeyAPIServerKubeletClientCert], caData[KeyCACert]) {
		t.Fatal("leaf not signed by its CA")
	}
	newData, _, err := EnsureCA(nil, Options{}, clock)
	if err != nil {
		t.Fatal(err)
	}
	newCA, _ := LoadKeyPair(newData, KeyCACert, KeyCAKey)
	if SignedBy(data[KeyAPIServerKubeletClientCert], newData[KeyCACert]) {
		t.Fatal("old leaf reported signed by the new CA")
	}
	renewed, r, err := EnsureAPIServerKubeletClient(data, newCA, Options{}, clock)
	if err != nil || r != CARotated {
		t.Fatalf("reason %q err %v, want CARotated", r, err)
	}
	if !SignedBy(renewed[KeyAPIServerKubeletClientCert], newData[KeyCACert]) {
		t.Fatal("reissued leaf not signed by the new CA")
	}
	verifyChain(t, renewed[KeyAPIServerKubeletClientCert], newCA.Cert, x509.ExtKeyUsageClientAuth, clock.now)
}

func TestForcedLeafRotation(t *testing.T) {
	clock := clockAt(0)
	_, ca := mustCA(t, Options{}, clock)
	data, _, _ := EnsureAPIServerKubeletClient(nil, ca, Options{}, clock)
	forced, r, err := EnsureAPIServerKubeletClient(data, ca, Options{Force: true}, clock)
	if err != nil || r != Forced {
		t.Fatalf("reason %q err %v", r, err)
	}
	if bytes.Equal(forced[KeyAPIServerKubeletClientKey], data[KeyAPIServerKubeletClientKey]) {
		t.Fatal("forced rotation kept the key")
	}
}

func TestInvalidLeafReissued(t *testing.T) {
	clock := clockAt(0)
	_, ca := mustCA(t, Options{}, clock)
	a, _, _ := EnsureAPIServerKubeletClient(nil, ca, Options{}, clock)
	b, _, _ := EnsureAPIServerKubeletClient(nil, ca, Options{}, clock)
	for name, data := range map[string]map[string][]byte{
		"garbage":      {KeyAPIServerKubeletClientCert: []byte("x"), KeyAPIServerKubeletClientKey: []byte("y")},
		"missing key":  {KeyAPIServerKubeletClientCert: a[KeyAPIServerKubeletClientCert]},
		"key mismatch": {KeyAPIServerKubeletClientCert: a[KeyAPIServerKubeletClientCert], KeyAPIServerKubeletClientKey: b[KeyAPIServerKubeletClientKey]},
	} {
		if _, r, err := EnsureAPIServerKubeletClient(data, ca, Options{}, clock); err != nil || r != Invalid {
			t.Errorf("%s: reason %q err %v, want Invalid", name, r, err)
		}
	}
}

func TestDatastoreCACopyRepaired(t *testing.T) {
	clock := clockAt(0)
	dsCA, err := newCA("datastore-ca", Options{}.WithDefaults(), t0)
	if err != nil {
		t.Fatal(err)
	}
	data, _, err := EnsureDatastoreClient(nil, dsCA, "u", nil, Options{}, clock)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data[KeyDatastoreCACert], dsCA.CertPEM()) {
		t.Fatal("ca.crt is not the DataStore CA")
	}
	stale := map[string][]byte{KeyDatastoreCert: data[KeyDatastoreCert], KeyDatastoreKey: data[KeyDatastoreKey]}
	fixed, r, err := EnsureDatastoreClient(stale, dsCA, "u", nil, Options{}, clock)
	if err != nil || r != Repaired || r.Reissued() {
		t.Fatalf("reason %q err %v, want Repaired", r, err)
	}
	if !bytes.Equal(fixed[KeyDatastoreCert], data[KeyDatastoreCert]) || !bytes.Equal(fixed[KeyDatastoreCACert], dsCA.CertPEM()) {
		t.Fatal("repair changed the certificate or did not restore ca.crt")
	}
	if _, _, err := EnsureDatastoreClient(nil, dsCA, "", nil, Options{}, clock); err == nil {
		t.Fatal("empty common name accepted")
	}
}

func TestNoCA(t *testing.T) {
	if _, _, err := EnsureAPIServerKubeletClient(nil, nil, Options{}, clockAt(0)); err == nil {
		t.Fatal("nil CA accepted")
	}
}

func mustKey(t *testing.T, keyPEM []byte) any {
	t.Helper()
	k, err := pki.ParseKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func kindOf(certKey string) Kind {
	for _, k := range Kinds {
		if slices.Contains(Keys(k), certKey) && certKey != KeyCACert {
			return k
		}
	}
	return ""
}
