package backup

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func archive(t *testing.T, n int) ([]byte, map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Created: time.Unix(1, 0).UTC(), Tenant: TenantRef{Namespace: "ns", Name: "a"}, KubernetesVersion: "v1.37.2", DataStore: "etcd", Driver: "etcd"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := range n {
		k, v := fmt.Sprintf("configmaps/ns/cm-%05d", i), strings.Repeat("v", i%5000)
		want[k] = v
		if err := w.Add([]byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), want
}

func TestRoundTrip(t *testing.T) {
	// Over 1 MiB of values: several chunk frames.
	data, want := archive(t, 1500)
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if h := r.Header(); h.FormatVersion != 1 || h.Tenant.Name != "a" || h.KubernetesVersion != "v1.37.2" {
		t.Fatalf("header %+v", h)
	}
	got := map[string]string{}
	chunks := 0
	for kvs, err := range r.Chunks {
		if err != nil {
			t.Fatal(err)
		}
		chunks++
		for _, kv := range kvs {
			got[string(kv.Key)] = string(kv.Value)
		}
	}
	if chunks < 2 {
		t.Errorf("%d chunks for %d keys", chunks, len(want))
	}
	tr, ok := r.Trailer()
	if !ok || tr.Keys != 1500 {
		t.Fatalf("trailer %+v %v", tr, ok)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d keys, wrote %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: read %d bytes, wrote %d", k, len(got[k]), len(v))
		}
	}
}

func TestEmptyArchive(t *testing.T) {
	data, _ := archive(t, 0)
	_, tr, err := Verify(bytes.NewReader(data))
	if err != nil || tr.Keys != 0 {
		t.Fatalf("empty archive: %+v %v", tr, err)
	}
}

// regzip rewrites an archive's uncompressed content through f.
func regzip(t *testing.T, data []byte, f func([]byte) []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	_, _ = zw.Write(f(raw))
	_ = zw.Close()
	return out.Bytes()
}

func TestDamageIsRefused(t *testing.T) {
	data, _ := archive(t, 50)
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"not gzip", []byte("hello"), "not gzip"},
		{"no magic", regzip(t, data, func(b []byte) []byte { return append([]byte("X"), b[1:]...) }), "magic"},
		{"truncated", regzip(t, data, func(b []byte) []byte { return b[:len(b)/2] }), "truncated"},
		{"a value changed", regzip(t, data, func(b []byte) []byte {
			i := bytes.LastIndex(b, []byte("vvvv"))
			c := bytes.Clone(b)
			c[i] = 'w'
			return c
		}), "SHA-256"},
		{"no trailer", regzip(t, data, func(b []byte) []byte { return b[:bytes.LastIndexByte(b, 'E')] }), "truncated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Verify(bytes.NewReader(c.data))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Verify: %v, want a corrupt archive error about %q", err, c.want)
			}
		})
	}
}

func TestNewerFormatIsRefused(t *testing.T) {
	data, _ := archive(t, 1)
	newer := regzip(t, data, func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"formatVersion":1`), []byte(`"formatVersion":9`), 1)
	})
	_, _, err := Verify(bytes.NewReader(newer))
	if err == nil || !strings.Contains(err.Error(), "archive format version 9: this build reads versions 1 to 1") {
		t.Fatalf("Verify: %v", err)
	}
}
