package kubeconfig

import (
	"bytes"
	"crypto/x509"
	"errors"

	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/tenantpki"
)

// ServerChanged: the client certificate was kept, the kubeconfig now points at another server
// (the public endpoint moved, the port changed...).
const ServerChanged tenantpki.Reason = "ServerChanged"

// client is one identity whose certificate a kubeconfig embeds.
type client struct {
	user  string
	group string
}

func (c client) profile() tenantpki.Profile {
	p := tenantpki.Profile{CommonName: c.user, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if c.group != "" {
		p.Organization = []string{c.group}
	}
	return p
}

// pair is a client certificate and key, carried from one kubeconfig to its variants.
type pair struct{ cert, key []byte }

// ensureConf keeps or rebuilds one kubeconfig whose client certificate it owns.
func ensureConf(current []byte, ca *pki.KeyPair, clusterName, server string, c client, opts tenantpki.Options, clock tenantpki.Clock) ([]byte, pair, tenantpki.Reason, error) {
	if ca == nil || ca.Cert == nil {
		return nil, pair{}, "", errors.New("kubeconfig: no CA")
	}
	if server == "" {
		// Checked before issuing: the endpoint may not be known yet, and a key generated now
		// would be thrown away.
		return nil, pair{}, "", errors.New("kubeconfig: empty server URL")
	}
	cur, ok := parse(current)
	cert, key, reason, err := tenantpki.EnsureLeaf(cur.cert, cur.key, ca, c.profile(), opts, clock)
	if err != nil {
		return nil, pair{}, "", err
	}
	if !ok && len(current) > 0 {
		reason = tenantpki.Invalid // EnsureLeaf saw nothing and said Created; the Secret held junk
	}
	p := pair{cert, key}
	conf, reason, err := wrap(current, ca, clusterName, server, c.user, p, reason)
	return conf, p, reason, err
}

// wrap builds the kubeconfig around a client pair. When the pair was not reissued and the
// result equals current, current is returned as is (Unchanged); otherwise the reason tells
// what moved.
func wrap(current []byte, ca *pki.KeyPair, clusterName, server, user string, p pair, reason tenantpki.Reason) ([]byte, tenantpki.Reason, error) {
	conf, err := Build(server, ca.TrustPEM(), user, p.cert, p.key, clusterName)
	if err != nil {
		return nil, "", err
	}
	if reason.Changed() {
		return conf, reason, nil
	}
	if bytes.Equal(conf, current) {
		return current, tenantpki.Unchanged, nil
	}
	if cur, ok := parse(current); ok && cur.server != server {
		return conf, ServerChanged, nil
	}
	// Same certificate, other wrapping: stale CA data, another cluster or user name, a
	// kubeconfig written by someone else...
	return conf, tenantpki.Repaired, nil
}
