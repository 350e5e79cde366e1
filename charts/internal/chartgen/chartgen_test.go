package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sigsyaml "sigs.k8s.io/yaml"
)

// ociArchive writes an OCI image layout tar as `make images` does: one image per platform,
// under an index when there are several, the binary at /usr/local/bin/<name>.
func ociArchive(t *testing.T, ref string, binaries map[string][]byte) string {
	t.Helper()
	name, tag, _ := strings.Cut(filepath.Base(ref), ":")
	blobs := map[string][]byte{}
	add := func(b []byte) string {
		sum := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(sum[:])
		blobs["blobs/sha256/"+hex.EncodeToString(sum[:])] = b
		return d
	}
	var manifests []map[string]any
	for plat, bin := range binaries {
		var layer bytes.Buffer
		gz := gzip.NewWriter(&layer)
		tw := tar.NewWriter(gz)
		for _, dir := range []string{"usr/", "usr/local/", "usr/local/bin/"} {
			_ = tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755})
		}
		_ = tw.WriteHeader(&tar.Header{Name: "usr/local/bin/" + name, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin))})
		_, _ = tw.Write(bin)
		tw.Close()
		gz.Close()
		m, _ := json.Marshal(map[string]any{
			"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
			"layers": []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": add(layer.Bytes())}},
		})
		os, arch, _ := strings.Cut(plat, "/")
		manifests = append(manifests, map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": add(m), "platform": map[string]string{"os": os, "architecture": arch}})
	}
	ann := map[string]string{"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": tag}
	var top map[string]any
	if len(manifests) == 1 {
		top = manifests[0]
	} else {
		idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests})
		top = map[string]any{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": add(idx)}
	}
	top["annotations"] = ann
	index, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{top}})
	blobs["index.json"] = index
	blobs["oci-layout"] = []byte(`{"imageLayoutVersion":"1.0.0"}`)

	path := filepath.Join(t.TempDir(), name+".oci.tar")
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for n, b := range blobs {
		_ = tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))})
		_, _ = tw.Write(b)
	}
	tw.Close()
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestDigestsOfThePluginBinaryPerPlatform(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "charts", "kamaji", "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	// An entry of another version of the same image is replaced; other images' are kept.
	old := "\"kamaji-datastore-etcd:0.0.9\":\n  linux/amd64: \"" + strings.Repeat("0", 64) + "\"\n\"kamaji-other:1.0.0\":\n  linux/amd64: \"" + strings.Repeat("1", 64) + "\"\n"
	if err := os.WriteFile(filepath.Join(root, digestsFile), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	multi := map[string][]byte{"linux/amd64": []byte("etcd plugin for amd64"), "linux/arm64": []byte("etcd plugin for arm64")}
	single := map[string][]byte{"linux/amd64": []byte("coredns plugin")}
	archives := []string{
		ociArchive(t, "ghcr.io/openhcp/kamaji-datastore-etcd:0.1.0", multi),
		ociArchive(t, "registry.example:5000/mirror/kamaji-addon-coredns:0.2.0", single),
		ociArchive(t, "ghcr.io/openhcp/kamaji:0.1.0", map[string][]byte{"linux/amd64": []byte("core")}), // not a plugin: skipped
	}
	if err := run(append([]string{"digests", "--root", root}, archives...)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, digestsFile))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]string{}
	if err := sigsyaml.Unmarshal(b, &got); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	want := map[string]map[string]string{
		"kamaji-datastore-etcd:0.1.0": {"linux/amd64": sum(multi["linux/amd64"]), "linux/arm64": sum(multi["linux/arm64"])},
		"kamaji-addon-coredns:0.2.0":  {"linux/amd64": sum(single["linux/amd64"])},
		"kamaji-other:1.0.0":          {"linux/amd64": strings.Repeat("1", 64)},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, plats := range want {
		for p, s := range plats {
			if got[k][p] != s {
				t.Errorf("%s %s: got %q, want %q", k, p, got[k][p], s)
			}
		}
	}
}

func TestDigestsRefuseAnArchiveWithoutTheBinary(t *testing.T) {
	a := ociArchive(t, "ghcr.io/openhcp/kamaji-datastore-etcd:0.1.0", map[string][]byte{"linux/amd64": []byte("x")})
	renamed := filepath.Join(filepath.Dir(a), "renamed.oci.tar")
	// Same layers, announced under another name: /usr/local/bin/kamaji-other is not there.
	b, _ := os.ReadFile(a)
	b = bytes.ReplaceAll(b, []byte("kamaji-datastore-etcd:0.1.0"), []byte("kamaji-datastore-abcd:0.1.0"))
	if err := os.WriteFile(renamed, b, 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	err := run([]string{"digests", "--root", root, renamed})
	if err == nil || !strings.Contains(err.Error(), "linux/amd64: no /usr/local/bin/kamaji-datastore-abcd in the image") {
		t.Fatalf("got %v", err)
	}
}

func TestReadmeListsEveryValueAndRefusesAnUndocumentedOne(t *testing.T) {
	values := `# header, not a value's

# -- The first value.
first: 1
nested:
  # -- A string
  # continued on a second line.
  leaf: "x"
# -- A documented map is one row.
documented:
  a: {b: true}
# -- (int) A type given, for a value whose default is null.
unset: null
`
	rows, err := valueRows([]byte(values))
	if err != nil {
		t.Fatal(err)
	}
	want := []row{
		{"first", "int", "1", "The first value."},
		{"nested.leaf", "string", `"x"`, "A string continued on a second line."},
		{"documented", "object", `{"a":{"b":true}}`, "A documented map is one row."},
		{"unset", "int", "null", "A type given, for a value whose default is null."},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v, want %+v", rows, want)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, rows[i], want[i])
		}
	}
	_, err = valueRows([]byte("# -- ok\na: 1\nb:\n  c: 2\n"))
	if err == nil || err.Error() != "line 4: b.c has no `# -- description` comment" {
		t.Errorf("undocumented value: got %v", err)
	}
}
