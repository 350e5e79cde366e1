package kubeconfig

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v2"
	"k8s.io/client-go/tools/clientcmd"
)

// Read agrees with client-go's loading on what the core reads: the current context's server
// and client pair, and every user's client certificate, for our own kubeconfigs and for others
// a user may have put in the Secret (JSON, several entries, missing ones).
func TestReadAgreesWithClientGo(t *testing.T) {
	ours, err := Build("https://tenant.example:6443", []byte("ca-pem"), "kubernetes-admin", []byte("cert-pem"), []byte("key-pem"), "tenant")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"ours": string(ours),
		"json": `{"apiVersion":"v1","kind":"Config","current-context":"c","clusters":[{"name":"k","cluster":{"server":"https://json:6443"}}],
			"users":[{"name":"u","user":{"client-certificate-data":"Y2VydA==","client-key-data":"a2V5"}}],
			"contexts":[{"name":"c","context":{"cluster":"k","user":"u"}}]}`,
		"second context": `apiVersion: v1
kind: Config
current-context: b
clusters:
- name: one
  cluster: {server: "https://one:6443"}
- name: two
  cluster: {server: "https://two:6443"}
users:
- name: first
  user: {client-certificate-data: Zmlyc3Q=, client-key-data: a2V5MQ==}
- name: second
  user: {client-certificate-data: c2Vjb25k, client-key-data: a2V5Mg==}
- name: token-only
  user: {token: abc}
contexts:
- name: a
  context: {cluster: one, user: first}
- name: b
  context: {cluster: two, user: second}
`,
		"no current context": `apiVersion: v1
kind: Config
clusters: [{name: k, cluster: {server: "https://x"}}]
users: [{name: u, user: {client-certificate-data: Y2VydA==}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
`,
		"context to a missing user": `current-context: c
clusters: [{name: k, cluster: {server: "https://x"}}]
contexts: [{name: c, context: {cluster: k, user: nobody}}]
`,
		"empty": ``,
	} {
		t.Run(name, func(t *testing.T) {
			want, err := clientcmd.Load([]byte(data))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Read([]byte(data))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			server, cert, key, ok := got.Current()
			wantOK := false
			if ctx := want.Contexts[want.CurrentContext]; ctx != nil {
				cl, u := want.Clusters[ctx.Cluster], want.AuthInfos[ctx.AuthInfo]
				if cl != nil && u != nil {
					wantOK = true
					if server != cl.Server || !bytes.Equal(cert, u.ClientCertificateData) || !bytes.Equal(key, u.ClientKeyData) {
						t.Errorf("current: %q %q %q, client-go: %q %q %q", server, cert, key, cl.Server, u.ClientCertificateData, u.ClientKeyData)
					}
				}
			}
			if ok != wantOK {
				t.Errorf("current context found: %v, client-go: %v", ok, wantOK)
			}
			var wantCerts []string
			for _, u := range want.AuthInfos {
				if len(u.ClientCertificateData) > 0 {
					wantCerts = append(wantCerts, string(u.ClientCertificateData))
				}
			}
			var gotCerts []string
			for _, c := range got.ClientCertificates() {
				gotCerts = append(gotCerts, string(c))
			}
			slices.Sort(wantCerts)
			slices.Sort(gotCerts)
			if !slices.Equal(gotCerts, wantCerts) {
				t.Errorf("client certificates %q, client-go: %q", gotCerts, wantCerts)
			}
		})
	}
}

// What client-go cannot load, Read refuses too.
func TestReadRefusesWhatClientGoDoes(t *testing.T) {
	for name, data := range map[string]string{
		"not YAML":       "{{{",
		"bad base64":     "users: [{name: u, user: {client-certificate-data: '!!'}}]",
		"bad key base64": "users: [{name: u, user: {client-key-data: '%%'}}]",
		"user twice":     "users: [{name: u, user: {}}, {name: u, user: {}}]",
		"cluster twice":  "clusters: [{name: k, cluster: {}}, {name: k, cluster: {}}]",
		"context twice":  "contexts: [{name: c, context: {}}, {name: c, context: {}}]",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := clientcmd.Load([]byte(data)); err == nil {
				t.Fatal("client-go loads it: the case proves nothing")
			}
			if _, err := Read([]byte(data)); err == nil {
				t.Error("Read accepted it")
			}
		})
	}
}

// The current context's pair, as the reconcile and the metrics read it, from a kubeconfig the
// core wrote, against client-go's loading (go test -bench Read).
func BenchmarkRead(b *testing.B) {
	data, err := Build("https://tenant.example:6443", bytes.Repeat([]byte("c"), 1100), "kubernetes-admin", bytes.Repeat([]byte("x"), 1100), bytes.Repeat([]byte("k"), 1700), "tenant")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e, err := Read(data)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, _, ok := e.Current(); !ok {
				b.Fatal("no current context")
			}
		}
	})
	b.Run("clientcmd.Load", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := clientcmd.Load(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Build's own output is read line by line, and gives what the YAML decoder gives; for names
// the emitter must quote, and any other layout, the decoder reads it.
func TestReadCanonical(t *testing.T) {
	for _, c := range []struct {
		server, user, cluster string
		canonical             bool
	}{
		{"https://tenant.example:6443", "kubernetes-admin", "tenant", true},
		{"https://[fd00::1]:6443", "system:kube-controller-manager", "my-tcp", true},
		{"https://10.0.0.1:31443", "system:kube-scheduler", "t.1", true},
		{"https://h:6443", "u", "true", false},      // quoted: "true"
		{"https://h:6443", "u", "123", false},       // quoted: "123"
		{"https://h:6443", "u", "a: b", false},      // quoted
		{"https://h:6443", "u", "#tenant", false},   // quoted
		{"https://h:6443", "null", "tenant", false}, // quoted
	} {
		data, err := Build(c.server, []byte("ca-pem"), c.user, []byte("cert-pem"), []byte("key-pem"), c.cluster)
		if err != nil {
			t.Fatal(err)
		}
		fast, ok := readCanonical(data)
		if ok != c.canonical {
			t.Errorf("%s/%s: read line by line: %v, want %v:\n%s", c.user, c.cluster, ok, c.canonical, data)
			continue
		}
		var raw rawConfig
		if err := yaml.Unmarshal(data, &raw); err != nil {
			t.Fatal(err)
		}
		got, err := Read(data)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			got = fast
		}
		server, cert, key, found := got.Current()
		if !found || server != c.server || string(cert) != "cert-pem" || string(key) != "key-pem" {
			t.Errorf("%s/%s: current %q %q %q %v", c.user, c.cluster, server, cert, key, found)
		}
		if u := raw.Users[0].Name; got.users[u].key == nil || raw.CurrentContext != got.current || raw.Clusters[0].Cluster.Server != server {
			t.Errorf("%s/%s: the decoder reads %+v, the line reader %+v", c.user, c.cluster, raw, got)
		}
	}
	// Our layout with one thing changed is left to the decoder, which reads it right.
	data, err := Build("https://tenant.example:6443", []byte("ca-pem"), "kubernetes-admin", []byte("cert-pem"), []byte("key-pem"), "tenant")
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(string) string{
		"comment": func(s string) string { return strings.Replace(s, "kind: Config", "kind: Config # ours", 1) },
		"quoted": func(s string) string {
			return strings.Replace(s, "server: https://tenant.example:6443", `server: "https://other:6443"`, 1)
		},
		"extra field": func(s string) string {
			return strings.Replace(s, "kind: Config\n", "kind: Config\npreferences: {}\n", 1)
		},
		"CRLF":         func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") },
		"second user":  func(s string) string { return s + "- name: other\n  user:\n    token: abc\n" },
		"no final EOL": func(s string) string { return strings.TrimSuffix(s, "\n") },
	} {
		edited := []byte(edit(string(data)))
		if _, ok := readCanonical(edited); ok {
			t.Errorf("%s: read line by line", name)
		}
		want, err := clientcmd.Load(edited)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := Read(edited)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		server, cert, _, ok := got.Current()
		ctx := want.Contexts[want.CurrentContext]
		if !ok || server != want.Clusters[ctx.Cluster].Server || !bytes.Equal(cert, want.AuthInfos[ctx.AuthInfo].ClientCertificateData) {
			t.Errorf("%s: read %q %q, client-go %q", name, server, cert, want.Clusters[ctx.Cluster].Server)
		}
	}
}
