package datastore

import (
	"crypto/tls"
	"crypto/x509"

	"github.com/openhcp/kamaji/sdk"
)

// ClientTLS is the TLS configuration a plugin dials its datastore with: nil without CACert
// (plain connections); else the DataStore's CA as the only root, serverName as the name to
// verify ("" verifies each dialled host), and the client certificate when one is given. A
// client certificate needs its key and a CA (TLS must verify the server). Errors name the field.
func (c Config) ClientTLS(serverName string) (*tls.Config, error) {
	switch {
	case len(c.ClientCert) > 0 && len(c.ClientKey) == 0:
		return nil, sdk.InvalidField("clientKey", "required with clientCert")
	case len(c.ClientKey) > 0 && len(c.ClientCert) == 0:
		return nil, sdk.InvalidField("clientCert", "required with clientKey")
	case len(c.ClientCert) > 0 && len(c.CACert) == 0:
		return nil, sdk.InvalidField("caCert", "required with a client certificate: TLS verifies the server")
	case len(c.CACert) == 0:
		return nil, nil
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(c.CACert) {
		return nil, sdk.InvalidField("caCert", "no PEM certificate")
	}
	cfg := &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12}
	if len(c.ClientCert) > 0 {
		pair, err := tls.X509KeyPair(c.ClientCert, c.ClientKey)
		if err != nil {
			return nil, sdk.InvalidField("clientCert", "%v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
