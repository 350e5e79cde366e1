package kine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/openhcp/kamaji/sdk/datastore"
)

func TestExpandLikeTheKubelet(t *testing.T) {
	env := map[string]string{"A": "x", "PW": "s3cr3t"}
	for in, want := range map[string]string{
		"$(A)":            "x",
		"u:$(PW)@h":       "u:s3cr3t@h",
		"$$(A)":           "$(A)",
		"$$":              "$",
		"a$$b":            "a$b",
		"$(UNSET)":        "$(UNSET)",
		"$(A":             "$(A",
		"$x":              "$x",
		"$":               "$",
		"db$$(HOME)$$$$x": "db$(HOME)$$x",
	} {
		if got := expand(in, env); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMaterialize(t *testing.T) {
	sc, err := Materialize(datastore.Connection{Kine: &datastore.KineSidecar{
		Args: []string{"--endpoint=nats://?contextFile=/etc/kine/nats/context.json&bucket=b", "--ca-file=/etc/kine/ca.crt", "--x=$(PW)"},
		Env:  []datastore.EnvVar{{Name: "PW", Value: "p", Secret: true}, {Name: "REF", Value: "<$(PW)>"}},
		Files: []datastore.File{
			{Path: "/etc/kine/nats/context.json", Content: []byte(`{"creds": "/etc/kine/nats/u.creds"}`)},
			{Path: "/etc/kine/ca.crt", Content: []byte("ca")},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if sc.Scheme() != "nats" || sc.Flag("x", "") != "p" || sc.Env["REF"] != "<p>" {
		t.Errorf("scheme %q, x %q, REF %q", sc.Scheme(), sc.Flag("x", ""), sc.Env["REF"])
	}
	ca, _, _ := sc.TLSFiles()
	if ca != filepath.Join(sc.Dir, "ca.crt") {
		t.Errorf("ca file %q not rewritten under %s", ca, sc.Dir)
	}
	b, err := os.ReadFile(filepath.Join(sc.Dir, "nats", "context.json"))
	if err != nil || string(b) != `{"creds": "`+sc.Dir+`/nats/u.creds"}` {
		t.Errorf("context file %q %v", b, err)
	}
	if _, err := Materialize(datastore.Connection{Kine: &datastore.KineSidecar{Files: []datastore.File{{Path: "/tmp/x"}}}}); err == nil {
		t.Error("a file outside /etc/kine was accepted")
	}
}

// The vectors are base58 (Bitcoin alphabet) of each segment, as kine's codec makes them.
func TestNATSKeyCodec(t *testing.T) {
	for key, want := range map[string]string{
		"/registry/pods":  "L8nZchjdPLL.3sh2fL",
		"compact_rev_key": "meta.3nMHGiDcNy8fooLXTBSrk",
		"/registry//pods": "L8nZchjdPLL.p.3sh2fL",
		"/\x00a":          "12g",
	} {
		got, err := EncodeNATSKey(key)
		if err != nil || got != want {
			t.Errorf("EncodeNATSKey(%q) = %q %v, want %q", key, got, err, want)
		}
	}
	nd := natsData{KV: &natsKeyValue{Key: "/k", Value: []byte{0, 1, 2}}, Create: true}
	b, err := encodeNATSValue(nd)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeNATSValue(b)
	if err != nil || back.KV.Key != "/k" || string(back.KV.Value) != "\x00\x01\x02" || !back.Create {
		t.Errorf("round trip: %+v %v", back, err)
	}
}
