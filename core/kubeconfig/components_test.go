package kubeconfig

import (
	"bytes"
	"testing"
	"time"

	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/tenantpki"
)

func TestComponents(t *testing.T) {
	for name, c := range map[string]struct {
		ensure func(map[string][]byte, *pki.KeyPair, string, string, tenantpki.Options, tenantpki.Clock) (map[string][]byte, tenantpki.Reason, error)
		key    string
		cn     string
	}{
		"controller-manager": {EnsureControllerManager, KeyControllerManager, "system:kube-controller-manager"},
		"scheduler":          {EnsureScheduler, KeyScheduler, "system:kube-scheduler"},
	} {
		t.Run(name, func(t *testing.T) {
			clock := clockAt(0)
			ca := newCA(t, clock)
			server := LocalServer(6443)
			data, r, err := c.ensure(nil, ca, "tenant", server, tenantpki.Options{}, clock)
			if err != nil || r != tenantpki.Created || len(data) != 1 {
				t.Fatalf("reason %q err %v keys %d", r, err, len(data))
			}
			checkKubeconfig(t, data[c.key], ca, "tenant", "https://127.0.0.1:6443", c.cn, nil, clock.now)

			if again, r, err := c.ensure(data, ca, "tenant", server, tenantpki.Options{}, clock); err != nil || r != tenantpki.Unchanged || !sameData(again, data) {
				t.Fatalf("second call: reason %q err %v", r, err)
			}
			late := clockAt(tenantpki.DefaultCertValidity - time.Hour)
			renewed, r, err := c.ensure(data, ca, "tenant", server, tenantpki.Options{}, late)
			if err != nil || r != tenantpki.Expiring {
				t.Fatalf("near expiry: reason %q err %v", r, err)
			}
			checkKubeconfig(t, renewed[c.key], ca, "tenant", server, c.cn, nil, late.now)
			if _, r, _ := c.ensure(data, newCA(t, clock), "tenant", server, tenantpki.Options{}, clock); r != tenantpki.CARotated {
				t.Fatalf("new CA: %q", r)
			}
			if _, r, _ := c.ensure(data, ca, "tenant", LocalServer(7443), tenantpki.Options{}, clock); r != ServerChanged {
				t.Fatalf("port change: %q", r)
			}
		})
	}
}

func TestEnsureKonnectivityWrapsTheKonnectivityCertificate(t *testing.T) {
	clock := clockAt(0)
	ca := newCA(t, clock)
	certs, _, err := tenantpki.EnsureKonnectivity(nil, ca, tenantpki.SANs{}, tenantpki.Options{}, clock)
	if err != nil {
		t.Fatal(err)
	}
	crt, key := certs[tenantpki.KeyKonnectivityCert], certs[tenantpki.KeyKonnectivityKey]
	data, reason, err := EnsureKonnectivity(nil, ca, "t1", LocalServer(6443), crt, key)
	if err != nil || reason != tenantpki.Created {
		t.Fatalf("%v %v", reason, err)
	}
	checkKubeconfig(t, data[KeyKonnectivity], ca, "t1", "https://127.0.0.1:6443", "system:konnectivity-server", nil, clock.now)
	again, reason, err := EnsureKonnectivity(data, ca, "t1", LocalServer(6443), crt, key)
	if err != nil || reason != tenantpki.Unchanged || !bytes.Equal(again[KeyKonnectivity], data[KeyKonnectivity]) {
		t.Fatalf("a second pass must keep the bytes: %v %v", reason, err)
	}
	renewed, _, err := tenantpki.EnsureKonnectivity(nil, ca, tenantpki.SANs{}, tenantpki.Options{}, clock)
	if err != nil {
		t.Fatal(err)
	}
	_, reason, err = EnsureKonnectivity(data, ca, "t1", LocalServer(6443), renewed[tenantpki.KeyKonnectivityCert], renewed[tenantpki.KeyKonnectivityKey])
	if err != nil || !reason.Changed() {
		t.Fatalf("a new certificate must rebuild the kubeconfig: %v %v", reason, err)
	}
}
