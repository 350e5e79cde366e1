package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	sigsyaml "sigs.k8s.io/yaml"
)

const digestsFile = "charts/kamaji/files/plugin-digests.yaml"

// writeDigests records, for each plugin image archive, the sha256 of its binary
// (/usr/local/bin/<image name>) on each platform of the archive, keyed "<image name>:<tag>",
// in charts/kamaji/files/plugin-digests.yaml. Entries of other images are kept; those of another
// version of the same image are replaced.
func writeDigests(root string, archives []string) error {
	path := filepath.Join(root, digestsFile)
	all := map[string]map[string]string{}
	if b, err := os.ReadFile(path); err == nil {
		if err := sigsyaml.Unmarshal(b, &all); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	for _, a := range archives {
		ref, sums, err := archiveDigests(a)
		if err != nil {
			return fmt.Errorf("%s: %w", a, err)
		}
		name := strings.SplitN(ref, ":", 2)[0]
		if name == "kamaji" {
			continue // the core image: not a plugin
		}
		for k := range all {
			if strings.SplitN(k, ":", 2)[0] == name {
				delete(all, k)
			}
		}
		all[ref] = sums
		for p, s := range sums {
			fmt.Printf("%s %s %s\n", ref, p, s)
		}
	}
	var b strings.Builder
	b.WriteString("# Written by `make chart-digests` (charts/internal/chartgen digests) from the images `make images`\n")
	b.WriteString("# built: the sha256 of each plugin's binary, by image and platform. The chart pins the bundled\n")
	b.WriteString("# plugins with them. Do not edit.\n")
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%q:\n", k)
		plats := make([]string, 0, len(all[k]))
		for p := range all[k] {
			plats = append(plats, p)
		}
		sort.Strings(plats)
		for _, p := range plats {
			fmt.Fprintf(&b, "  %s: %q\n", p, all[k][p]) // quoted: a digest of digits only is no number
		}
	}
	return writeIfChanged(path, []byte(b.String()))
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Annotations map[string]string `json:"annotations"`
	Platform    *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	} `json:"platform"`
}

type manifest struct {
	MediaType string       `json:"mediaType"`
	Manifests []descriptor `json:"manifests"` // an index
	Layers    []descriptor `json:"layers"`    // an image
}

// archiveDigests reads an OCI image layout tar: its reference without the registry
// ("kamaji-datastore-etcd:0.1.0") and the sha256 of /usr/local/bin/<name> per platform.
func archiveDigests(archive string) (string, map[string]string, error) {
	blobs, err := readTar(archive)
	if err != nil {
		return "", nil, err
	}
	var top manifest
	if err := json.Unmarshal(blobs["index.json"], &top); err != nil || len(top.Manifests) != 1 {
		return "", nil, fmt.Errorf("not an OCI archive of one image (index.json)")
	}
	entry := top.Manifests[0]
	full := entry.Annotations["io.containerd.image.name"]
	if full == "" {
		return "", nil, fmt.Errorf("index.json: no io.containerd.image.name annotation")
	}
	ref := path.Base(full) // registry/.../name:tag -> name:tag
	name := strings.SplitN(ref, ":", 2)[0]
	blob := func(d descriptor) (manifest, error) {
		var m manifest
		b, ok := blobs["blobs/"+strings.Replace(d.Digest, ":", "/", 1)]
		if !ok {
			return m, fmt.Errorf("blob %s missing", d.Digest)
		}
		return m, json.Unmarshal(b, &m)
	}
	images := []descriptor{entry}
	if strings.Contains(entry.MediaType, "index") {
		idx, err := blob(entry)
		if err != nil {
			return "", nil, err
		}
		images = idx.Manifests
	}
	sums := map[string]string{}
	for _, d := range images {
		if d.Platform == nil {
			return "", nil, fmt.Errorf("manifest %s: no platform", d.Digest)
		}
		plat := d.Platform.OS + "/" + d.Platform.Architecture
		if d.Platform.Variant != "" {
			plat += "/" + d.Platform.Variant
		}
		img, err := blob(d)
		if err != nil {
			return "", nil, err
		}
		sum := ""
		for _, l := range img.Layers {
			layer, ok := blobs["blobs/"+strings.Replace(l.Digest, ":", "/", 1)]
			if !ok {
				return "", nil, fmt.Errorf("layer %s missing", l.Digest)
			}
			s, err := fileSHA256(layer, "usr/local/bin/"+name)
			if err != nil {
				return "", nil, fmt.Errorf("layer %s: %w", l.Digest, err)
			}
			if s != "" {
				sum = s // a later layer wins, as in the image's filesystem
			}
		}
		if sum == "" {
			return "", nil, fmt.Errorf("%s: no /usr/local/bin/%s in the image", plat, name)
		}
		sums[plat] = sum
	}
	return ref, sums, nil
}

func readTar(archive string) (map[string][]byte, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		out[strings.TrimPrefix(h.Name, "./")] = b
	}
}

// fileSHA256 hashes the file at name in a layer (gzip-compressed or plain tar); "" if absent.
func fileSHA256(layer []byte, name string) (string, error) {
	var r io.Reader = strings.NewReader(string(layer))
	if len(layer) > 2 && layer[0] == 0x1f && layer[1] == 0x8b {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return "", err
		}
		r = gz
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		if strings.TrimPrefix(h.Name, "./") == name && h.Typeflag == tar.TypeReg {
			hash := sha256.New()
			if _, err := io.Copy(hash, tr); err != nil {
				return "", err
			}
			return hex.EncodeToString(hash.Sum(nil)), nil
		}
	}
}
