package driver

import (
	"errors"
	"strings"
	"testing"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit"
)

func TestEndpointURL(t *testing.T) {
	for in, want := range map[string]string{
		"etcd-0.etcd.kamaji-system.svc:2379": "https://etcd-0.etcd.kamaji-system.svc:2379",
		"https://10.0.0.1:2379":              "https://10.0.0.1:2379",
		"[::1]:2379":                         "https://[::1]:2379",
	} {
		if got, err := endpointURL(in); err != nil || got != want {
			t.Errorf("endpointURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"etcd", "http://etcd:2379", "etcd:0", "etcd:http", ":2379", "https://etcd:2379/path"} {
		if got, err := endpointURL(bad); err == nil {
			t.Errorf("endpointURL(%q) = %q, want an error", bad, got)
		}
	}
}

func TestServersNamesTheField(t *testing.T) {
	ca := testkit.NewCA(t)
	client := testkit.IssueClient(t, ca, "root")
	other := testkit.NewCA(t)
	validConfig := func(*testing.T) datastore.Config {
		return datastore.Config{
			Driver: "etcd", Endpoints: []string{"etcd:2379"},
			CACert: ca.Cert, CAKey: ca.Key, ClientCert: client.Cert, ClientKey: client.Key,
		}
	}
	for field, mutate := range map[string]func(*datastore.Config){
		"endpoints":    func(c *datastore.Config) { c.Endpoints = nil },
		"endpoints[1]": func(c *datastore.Config) { c.Endpoints = append(c.Endpoints, "nope") },
		"caCert":       func(c *datastore.Config) { c.CACert = []byte("garbage") },
		"caKey":        func(c *datastore.Config) { c.CAKey = other.Key },
		"clientKey":    func(c *datastore.Config) { c.ClientKey = nil },
		"clientCert":   func(c *datastore.Config) { c.ClientCert, c.ClientKey = nil, nil },
		"password":     func(c *datastore.Config) { c.ClientCert, c.ClientKey, c.Username = nil, nil, "root" },
		"parameters.a": func(c *datastore.Config) { c.Parameters = map[string]string{"b": "2", "a": "1"} },
	} {
		cfg := validConfig(t)
		mutate(&cfg)
		_, err := servers(cfg)
		var fe *sdk.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: got %v, want a FieldError on %s", field, err, field)
		}
	}
	if _, err := servers(validConfig(t)); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestTenantPrefix(t *testing.T) {
	if p, err := tenantPrefix(datastore.Tenant{Schema: "ns_a", Username: "ns_a"}); err != nil || p != "/ns_a/" {
		t.Errorf("tenantPrefix = %q, %v", p, err)
	}
	for _, tc := range []datastore.Tenant{
		{Username: "u"}, {Schema: "a/b", Username: "u"}, {Schema: "s"}, {Schema: "s", Username: "root"},
	} {
		if _, err := tenantPrefix(tc); err == nil || !strings.HasPrefix(err.Error(), "tenant.") {
			t.Errorf("tenantPrefix(%+v) = %v, want a tenant field error", tc, err)
		}
	}
}
