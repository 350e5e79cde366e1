package kubeconfig

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v2"
)

// Embedded is what the core reads back from a kubeconfig: the names, servers and inline client
// credentials, nothing else. Every pass reads the TCP's kubeconfigs and the metrics read them
// all at their first scrape (4,000 at 1,000 TCPs), so they are not loaded by client-go (YAML to
// JSON to objects: 57 KB allocated and about 0.2 ms for one of ours). The layout Build writes is
// read line by line (a twelfth of that memory, a tenth of the time); any other is decoded
// straight from YAML (JSON is YAML), in about half client-go's time.
type Embedded struct {
	current  string
	clusters map[string]string // server by cluster name
	users    map[string]user
	contexts map[string]contextRef
}

type user struct{ cert, key []byte }

type contextRef struct{ cluster, user string }

// The kubeconfig fields read (clientcmd's v1 names).
type rawConfig struct {
	CurrentContext string `yaml:"current-context"`
	Clusters       []struct {
		Name    string `yaml:"name"`
		Cluster struct {
			Server string `yaml:"server"`
		} `yaml:"cluster"`
	} `yaml:"clusters"`
	Users []struct {
		Name string `yaml:"name"`
		User struct {
			Cert string `yaml:"client-certificate-data"`
			Key  string `yaml:"client-key-data"`
		} `yaml:"user"`
	} `yaml:"users"`
	Contexts []struct {
		Name    string `yaml:"name"`
		Context struct {
			Cluster string `yaml:"cluster"`
			User    string `yaml:"user"`
		} `yaml:"context"`
	} `yaml:"contexts"`
}

// Read decodes a kubeconfig's names, servers and inline client credentials. Like client-go's
// loading, it refuses a cluster, user or context name given twice.
func Read(data []byte) (*Embedded, error) {
	if e, ok := readCanonical(data); ok {
		return e, nil
	}
	var raw rawConfig
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	e := &Embedded{
		current:  raw.CurrentContext,
		clusters: make(map[string]string, len(raw.Clusters)),
		users:    make(map[string]user, len(raw.Users)),
		contexts: make(map[string]contextRef, len(raw.Contexts)),
	}
	for _, c := range raw.Clusters {
		if _, dup := e.clusters[c.Name]; dup {
			return nil, fmt.Errorf("kubeconfig: cluster %q is listed twice", c.Name)
		}
		e.clusters[c.Name] = c.Cluster.Server
	}
	for _, u := range raw.Users {
		if _, dup := e.users[u.Name]; dup {
			return nil, fmt.Errorf("kubeconfig: user %q is listed twice", u.Name)
		}
		cert, err := base64.StdEncoding.DecodeString(u.User.Cert)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig: user %q: client-certificate-data: %w", u.Name, err)
		}
		key, err := base64.StdEncoding.DecodeString(u.User.Key)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig: user %q: client-key-data: %w", u.Name, err)
		}
		e.users[u.Name] = user{cert: cert, key: key}
	}
	for _, c := range raw.Contexts {
		if _, dup := e.contexts[c.Name]; dup {
			return nil, fmt.Errorf("kubeconfig: context %q is listed twice", c.Name)
		}
		e.contexts[c.Name] = contextRef{cluster: c.Context.Cluster, user: c.Context.User}
	}
	return e, nil
}

// Current returns the current context's server and inline client pair; ok is false when the
// context, its cluster or its user is missing.
func (e *Embedded) Current() (server string, cert, key []byte, ok bool) {
	ctx, found := e.contexts[e.current]
	if !found {
		return "", nil, nil, false
	}
	server, foundCluster := e.clusters[ctx.cluster]
	u, foundUser := e.users[ctx.user]
	if !foundCluster || !foundUser {
		return "", nil, nil, false
	}
	return server, u.cert, u.key, true
}

// ClientCertificates returns every user's inline client certificate (PEM), in no order.
func (e *Embedded) ClientCertificates() [][]byte {
	var out [][]byte
	for _, u := range e.users {
		if len(u.cert) > 0 {
			out = append(out, u.cert)
		}
	}
	return out
}

// canonical is the layout Build writes, line by line; a line ending in ": " is followed by a
// value. The core rewrites every kubeconfig of its Secrets that differs from what Build gives, so
// nearly every read is of this layout.
var canonical = []string{
	"apiVersion: v1",
	"clusters:",
	"- cluster:",
	"    certificate-authority-data: ",
	"    server: ",
	"  name: ",
	"contexts:",
	"- context:",
	"    cluster: ",
	"    user: ",
	"  name: ",
	"current-context: ",
	"kind: Config",
	"users:",
	"- name: ",
	"  user:",
	"    client-certificate-data: ",
	"    client-key-data: ",
}

// readCanonical reads a kubeconfig of the canonical layout; ok is false for anything else, which
// the YAML decoder then reads. Only plain values are taken: whatever YAML would read otherwise
// than as its text (quoted, flow, anchors, comments...) is left to the decoder.
func readCanonical(data []byte) (*Embedded, bool) {
	var values [10][]byte
	n, rest := 0, data
	for _, want := range canonical {
		line, tail, found := bytes.Cut(rest, []byte("\n"))
		if !found {
			return nil, false
		}
		rest = tail
		if !strings.HasSuffix(want, ": ") {
			if string(line) != want {
				return nil, false
			}
			continue
		}
		v, ok := bytes.CutPrefix(line, []byte(want))
		if !ok || !plain(v) {
			return nil, false
		}
		values[n] = v
		n++
	}
	if len(rest) != 0 {
		return nil, false
	}
	// values: the CA (not read, as by the decoder), server, cluster name; the context's cluster,
	// user and name; the current context; the user's name, certificate and key.
	cert, err1 := decode(values[8])
	key, err2 := decode(values[9])
	if err1 != nil || err2 != nil {
		return nil, false
	}
	return &Embedded{
		current:  string(values[6]),
		clusters: map[string]string{string(values[2]): string(values[1])},
		users:    map[string]user{string(values[7]): {cert: cert, key: key}},
		contexts: map[string]contextRef{string(values[5]): {cluster: string(values[3]), user: string(values[4])}},
	}, true
}

func decode(b64 []byte) ([]byte, error) {
	out := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	n, err := base64.StdEncoding.Decode(out, b64)
	return out[:n], err
}

// plain: a YAML plain scalar that reads as its own text (the emitter quotes any other string).
func plain(v []byte) bool {
	if len(v) == 0 || v[len(v)-1] == ' ' || strings.ContainsRune("\"'!&*{}[]|>%@`#,?:-~", rune(v[0])) {
		return false
	}
	if bytes.Contains(v, []byte(": ")) || bytes.Contains(v, []byte(" #")) || bytes.ContainsAny(v, "\t\r") {
		return false
	}
	if len(v) > len("false") {
		return true
	}
	switch strings.ToLower(string(v)) {
	case "null", "true", "false", "yes", "no", "on", "off", "y", "n":
		return false
	}
	return true
}
