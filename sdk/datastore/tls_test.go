package datastore_test

import (
	"errors"
	"testing"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit"
)

func TestClientTLSNamesTheField(t *testing.T) {
	ca := testkit.NewCA(t)
	client := testkit.IssueClient(t, ca, "admin")
	other := testkit.NewCA(t)
	for field, cfg := range map[string]datastore.Config{
		"clientKey":  {CACert: ca.Cert, ClientCert: client.Cert},
		"clientCert": {CACert: ca.Cert, ClientKey: client.Key},
		"caCert":     {ClientCert: client.Cert, ClientKey: client.Key},
	} {
		var fe *sdk.FieldError
		if _, err := cfg.ClientTLS("db"); !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: %v", field, err)
		}
	}
	var fe *sdk.FieldError
	if _, err := (datastore.Config{CACert: []byte("garbage")}).ClientTLS("db"); !errors.As(err, &fe) || fe.Field != "caCert" {
		t.Errorf("garbage CA: %v", err)
	}
	if _, err := (datastore.Config{CACert: ca.Cert, ClientCert: client.Cert, ClientKey: other.Key}).ClientTLS("db"); !errors.As(err, &fe) || fe.Field != "clientCert" {
		t.Errorf("mismatched key: %v", err)
	}
}

func TestClientTLS(t *testing.T) {
	if c, err := (datastore.Config{}).ClientTLS("db"); c != nil || err != nil {
		t.Errorf("no CA: %v, %v; want plain connections", c, err)
	}
	ca := testkit.NewCA(t)
	client := testkit.IssueClient(t, ca, "admin")
	c, err := (datastore.Config{CACert: ca.Cert, ClientCert: client.Cert, ClientKey: client.Key}).ClientTLS("db.example")
	if err != nil {
		t.Fatal(err)
	}
	if c.ServerName != "db.example" || len(c.Certificates) != 1 || c.RootCAs == nil || c.InsecureSkipVerify {
		t.Errorf("config %+v", c)
	}
}
