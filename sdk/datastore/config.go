package datastore

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
)

// Config is a DataStore with its Secrets resolved. It is sent with every request, because
// plugins keep no state between calls.
//
// CAKey, ClientKey and Password are secret (marked `(kamaji.secret) = true` in the proto): the
// fmt verbs and slog print a Config with those fields redacted, and Redacted returns such a copy.
type Config struct {
	Name      string
	Driver    string
	Endpoints []string
	// CACert, CAKey, ClientCert and ClientKey are PEM.
	CACert     []byte
	CAKey      []byte
	ClientCert []byte
	ClientKey  []byte
	Username   string
	Password   string
	// Parameters are driver-specific settings.
	Parameters map[string]string
}

const redactedMark = "[REDACTED]"

// Redacted returns a copy of c whose secret fields, when set, read "[REDACTED]". Use it for
// anything that leaves the process in clear: logs, events, error messages.
func (c Config) Redacted() Config {
	r := c
	r.Endpoints = slices.Clone(c.Endpoints)
	r.Parameters = maps.Clone(c.Parameters)
	if len(c.CAKey) > 0 {
		r.CAKey = []byte(redactedMark)
	}
	if len(c.ClientKey) > 0 {
		r.ClientKey = []byte(redactedMark)
	}
	if c.Password != "" {
		r.Password = redactedMark
	}
	return r
}

// String prints c with secrets redacted and PEM blocks summarized.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "{Name:%q Driver:%q Endpoints:%q", c.Name, c.Driver, c.Endpoints)
	fmt.Fprintf(&b, " CACert:%s CAKey:%s", pemSummary(c.CACert), secretSummary(len(c.CAKey)))
	fmt.Fprintf(&b, " ClientCert:%s ClientKey:%s", pemSummary(c.ClientCert), secretSummary(len(c.ClientKey)))
	fmt.Fprintf(&b, " Username:%q Password:%s", c.Username, secretSummary(len(c.Password)))
	keys := slices.Sorted(maps.Keys(c.Parameters))
	b.WriteString(" Parameters:{")
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%q:%q", k, c.Parameters[k])
	}
	b.WriteString("}}")
	return b.String()
}

// Format makes every fmt verb (%v, %+v, %#v, %s...) print String, so that no formatting of a
// Config, however careless, leaks a secret.
func (c Config) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }

// LogValue redacts c in slog output.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", c.Name),
		slog.String("driver", c.Driver),
		slog.Any("endpoints", c.Endpoints),
		slog.String("caCert", pemSummary(c.CACert)),
		slog.String("caKey", secretSummary(len(c.CAKey))),
		slog.String("clientCert", pemSummary(c.ClientCert)),
		slog.String("clientKey", secretSummary(len(c.ClientKey))),
		slog.String("username", c.Username),
		slog.String("password", secretSummary(len(c.Password))),
		slog.Any("parameters", c.Parameters),
	)
}

func pemSummary(b []byte) string {
	if len(b) == 0 {
		return "<none>"
	}
	return fmt.Sprintf("<%d bytes>", len(b))
}

func secretSummary(n int) string {
	if n == 0 {
		return "<none>"
	}
	return redactedMark
}

// Redacted returns a copy of c whose secret env values and secret file contents read
// "[REDACTED]".
func (c Connection) Redacted() Connection {
	if c.Kine == nil {
		return c
	}
	k := *c.Kine
	k.Env = slices.Clone(k.Env)
	for i := range k.Env {
		if k.Env[i].Secret {
			k.Env[i].Value = redactedMark
		}
	}
	k.Files = slices.Clone(k.Files)
	for i := range k.Files {
		if k.Files[i].Secret {
			k.Files[i].Content = []byte(redactedMark)
		}
	}
	c.Kine = &k
	return c
}
