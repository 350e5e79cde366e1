package testkit_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/openhcp/kamaji/sdk/internal/pki"
	"github.com/openhcp/kamaji/sdk/testkit"
)

func TestEtcdIsMultiTenantReady(t *testing.T) {
	e := testkit.StartEtcd(t)
	root := e.Client(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	auth, err := root.AuthStatus(ctx)
	if err != nil || !auth.Enabled {
		t.Fatalf("AuthStatus = %+v, %v; want auth enabled", auth, err)
	}
	if _, err := root.Put(ctx, "/k", "v"); err != nil {
		t.Fatalf("root put: %v", err)
	}

	// A client certificate from the same CA for a user etcd does not know is refused.
	kp, err := pki.Issue(pki.KeyPair{Cert: e.CACert, Key: e.CAKey}, "nobody", nil, false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(kp.Cert, kp.Key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.CACert)
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: []string{"https://" + e.Endpoints[0]},
		TLS:       &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool},
		Logger:    zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Get(ctx, "/k"); err == nil {
		t.Fatal("an unknown user read a key")
	}
}
