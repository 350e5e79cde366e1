package driver

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// servers validates the configuration's fields and returns the endpoints as https URLs.
// Field names in errors are the proto JSON names, which the core maps to DataStore fields.
func servers(cfg datastore.Config) ([]string, error) {
	for _, k := range slices.Sorted(maps.Keys(cfg.Parameters)) {
		return nil, sdk.InvalidField("parameters."+k, "unknown parameter: the etcd driver takes none")
	}
	if len(cfg.Endpoints) == 0 {
		return nil, sdk.InvalidField("endpoints", "at least one etcd endpoint is required")
	}
	out := make([]string, len(cfg.Endpoints))
	for i, ep := range cfg.Endpoints {
		u, err := endpointURL(ep)
		if err != nil {
			return nil, sdk.InvalidField(fmt.Sprintf("endpoints[%d]", i), "%v", err)
		}
		out[i] = u
	}
	if len(cfg.CACert) == 0 {
		return nil, sdk.InvalidField("caCert", "required: the etcd driver only talks TLS")
	}
	ca, err := parseCert(cfg.CACert)
	if err != nil {
		return nil, sdk.InvalidField("caCert", "%v", err)
	}
	if len(cfg.CAKey) > 0 {
		// The driver does not use the CA key, but the core signs tenant certificates with it:
		// a mismatch is better reported now than as a tenant apiserver that cannot connect.
		if _, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), cfg.CAKey); err != nil {
			return nil, sdk.InvalidField("caKey", "does not match caCert: %v", err)
		}
	}
	switch {
	case len(cfg.ClientCert) > 0 && len(cfg.ClientKey) == 0:
		return nil, sdk.InvalidField("clientKey", "required with clientCert")
	case len(cfg.ClientCert) > 0:
		if _, err := tls.X509KeyPair(cfg.ClientCert, cfg.ClientKey); err != nil {
			return nil, sdk.InvalidField("clientCert", "%v", err)
		}
	case len(cfg.ClientKey) > 0:
		return nil, sdk.InvalidField("clientCert", "required with clientKey")
	case cfg.Username == "":
		return nil, sdk.InvalidField("clientCert", "a client certificate (or username and password) of a root user is required to manage tenants")
	}
	if cfg.Username != "" && cfg.Password == "" {
		return nil, sdk.InvalidField("password", "required with username")
	}
	return out, nil
}

func endpointURL(ep string) (string, error) {
	hostport := ep
	if strings.Contains(ep, "://") {
		u, err := url.Parse(ep)
		if err != nil {
			return "", err
		}
		if u.Scheme != "https" {
			return "", fmt.Errorf("scheme %q: the etcd driver only talks https", u.Scheme)
		}
		if u.Path != "" && u.Path != "/" {
			return "", fmt.Errorf("unexpected path %q", u.Path)
		}
		hostport = u.Host
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("want host:port or https://host:port, got %q", ep)
	}
	if host == "" {
		return "", fmt.Errorf("empty host in %q", ep)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("invalid port %q", port)
	}
	return "https://" + net.JoinHostPort(host, port), nil
}

func parseCert(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("not a PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}
