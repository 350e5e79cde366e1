package worker

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// File is one entry of an image's single layer.
type File struct {
	Path string // in the image, without the leading slash
	Mode int64
	// One of: From (a host file copied in), Body (the content), Link (a symlink target), Dir.
	From, Link string
	Body       []byte
	Dir        bool
}

// Image is an image built on this machine from host files.
type Image struct {
	Ref        string // full reference: docker.io/library/busybox:latest
	Files      []File
	Entrypoint []string
	Cmd        []string
	Env        []string
	User       string
}

const (
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// epoch stamps every layer entry, so the same files give the same digests.
var epoch = time.Unix(0, 0).UTC()

// BuildImages writes the images into the registry folder dir (blobs and index) and returns
// each one's manifest digest. An image whose sources have not changed since it was written
// (the same files, sizes and modification times, the same configuration) is left as it is,
// unread: a second `up` does not compress every binary again. Writers (the plane's up, the
// kubelet node's registry making an image on its first pull) take turns on the folder's lock.
func BuildImages(dir string, imgs []Image) (map[string]string, error) {
	if err := os.MkdirAll(filepath.Join(dir, blobsDir), 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	idx, err := readIndex(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	changed := false
	for _, img := range imgs {
		ref := NormalizeRef(img.Ref)
		src, err := sourceStamp(img)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Ref, err)
		}
		if d, ok := idx.Images[ref]; ok && d.Source == src && fileExists(filepath.Join(dir, blobsDir, strings.TrimPrefix(d.Digest, "sha256:"))) {
			out[img.Ref] = d.Digest
			continue
		}
		d, err := buildImage(dir, img)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Ref, err)
		}
		d.Source = src
		idx.Images[ref] = d
		out[img.Ref] = d.Digest
		changed = true
	}
	if !changed {
		return out, nil
	}
	data, _ := json.MarshalIndent(idx, "", "  ")
	tmp := filepath.Join(dir, registryIndex+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return nil, err
	}
	return out, os.Rename(tmp, filepath.Join(dir, registryIndex))
}

// lockDir takes the registry folder's write lock (released by the returned func).
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

// sourceStamp identifies what an image is made of without reading its files: its
// configuration, and each file's path, mode and content, or for a host file its path, size and
// modification time (a rebuilt binary changes both).
func sourceStamp(img Image) (string, error) {
	h := sha256.New()
	enc := json.NewEncoder(h)
	_ = enc.Encode([]any{img.Ref, imageConfig(img)})
	// In path order, as the layer has them: the order they were listed in is not content.
	files := slices.Clone(img.Files)
	sort.SliceStable(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	for _, f := range files {
		entry := []any{f.Path, f.Mode, f.Link, f.Dir, digestOf(f.Body)}
		if f.From != "" {
			st, err := os.Stat(f.From)
			if err != nil {
				return "", err
			}
			entry = append(entry, f.From, st.Size(), st.ModTime().UnixNano())
		}
		_ = enc.Encode(entry)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// NormalizeRef is a reference as containerd asks for it: docker.io for a reference without a
// registry, library/ for an official image's name alone (rancher/kine:v1 is
// docker.io/rancher/kine:v1, busybox:latest docker.io/library/busybox:latest).
func NormalizeRef(ref string) string {
	first, rest, ok := strings.Cut(ref, "/")
	if !ok {
		return "docker.io/library/" + ref
	}
	if strings.ContainsAny(first, ".:") || first == "localhost" {
		return ref
	}
	return "docker.io/" + first + "/" + rest
}

func buildImage(dir string, img Image) (Descriptor, error) {
	raw, err := layerTar(img.Files)
	if err != nil {
		return Descriptor{}, err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := zw.Write(raw); err != nil {
		return Descriptor{}, err
	}
	if err := zw.Close(); err != nil {
		return Descriptor{}, err
	}
	layer, err := putBlob(dir, gz.Bytes())
	if err != nil {
		return Descriptor{}, err
	}
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      epoch.Format(time.RFC3339),
		"config":       imageConfig(img),
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{digestOf(raw)}},
	})
	if err != nil {
		return Descriptor{}, err
	}
	cfg, err := putBlob(dir, config)
	if err != nil {
		return Descriptor{}, err
	}
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaManifest,
		"config":        Descriptor{MediaType: mediaConfig, Digest: cfg, Size: int64(len(config))},
		"layers":        []Descriptor{{MediaType: mediaLayer, Digest: layer, Size: int64(gz.Len())}},
	})
	m, err := putBlob(dir, manifest)
	if err != nil {
		return Descriptor{}, err
	}
	return Descriptor{MediaType: mediaManifest, Digest: m, Size: int64(len(manifest))}, nil
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func putBlob(dir string, b []byte) (string, error) {
	d := digestOf(b)
	p := filepath.Join(dir, blobsDir, strings.TrimPrefix(d, "sha256:"))
	if _, err := os.Stat(p); err == nil {
		return d, nil
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return "", err
	}
	return d, os.Rename(tmp, p)
}

// layerTar is the layer's tar: parent folders first, entries in path order, root-owned.
func layerTar(files []File) ([]byte, error) {
	all := map[string]File{}
	for _, f := range files {
		f.Path = strings.Trim(f.Path, "/")
		all[f.Path] = f
		for d := filepath.Dir(f.Path); d != "." && d != "/"; d = filepath.Dir(d) {
			if _, ok := all[d]; !ok {
				all[d] = File{Path: d, Dir: true, Mode: 0o755}
			}
		}
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		f := all[n]
		h := &tar.Header{Name: n, Mode: f.Mode, ModTime: epoch, Format: tar.FormatPAX}
		var body []byte
		switch {
		case f.Dir:
			h.Typeflag, h.Name = tar.TypeDir, n+"/"
			if h.Mode == 0 {
				h.Mode = 0o755
			}
		case f.Link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.Link, 0o777
		default:
			body = f.Body
			if f.From != "" {
				b, err := os.ReadFile(f.From)
				if err != nil {
					return nil, err
				}
				body = b
			}
			h.Typeflag, h.Size = tar.TypeReg, int64(len(body))
			if h.Mode == 0 {
				h.Mode = 0o644
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// PauseImage is the pod sandbox: kamaji-pause (cmd/pause) as /pause.
func PauseImage(pauseBin string) Image {
	return Image{
		Ref:        SandboxImage,
		Files:      []File{{Path: "pause", From: pauseBin, Mode: 0o755}},
		Entrypoint: []string{"/pause"},
	}
}

// BusyboxImage is docker.io/library/busybox:latest made of Debian's static busybox (package
// busybox-static) and its applets, with the folders and users of the upstream image.
func BusyboxImage(busybox string) (Image, error) {
	out, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return Image{}, fmt.Errorf("%s --list-full: %w", busybox, err)
	}
	files := []File{
		{Path: "bin/busybox", From: busybox, Mode: 0o755},
		{Path: "etc/passwd", Body: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")},
		{Path: "etc/group", Body: []byte("root:x:0:\nnogroup:x:65534:\n")},
		{Path: "tmp", Dir: true, Mode: 0o1777},
		{Path: "root", Dir: true, Mode: 0o700},
		{Path: "home", Dir: true},
		{Path: "var", Dir: true},
	}
	for _, l := range strings.Fields(string(out)) {
		if l == "bin/busybox" {
			continue
		}
		files = append(files, File{Path: l, Link: "/bin/busybox"})
	}
	return Image{
		Ref:   "docker.io/library/busybox:latest",
		Files: files,
		Cmd:   []string{"sh"},
		Env:   []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	}, nil
}

// hostLibraries are the shared libraries (and the loader) host programs load, as ldd lists
// them: the paths the programs look them up at.
func hostLibraries(bins ...string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, b := range bins {
		data, err := exec.Command("ldd", b).Output()
		if err != nil {
			return nil, fmt.Errorf("ldd %s: %w", b, err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			f := strings.Fields(l)
			var p string
			switch {
			case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
				p = f[2]
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				p = f[0]
			}
			if p != "" && !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// xtablesMulti is Debian's iptables (nf_tables backend) and the folder of its extensions.
const (
	xtablesMulti = "/usr/sbin/xtables-nft-multi"
	xtablesLib   = "/usr/lib/x86_64-linux-gnu/xtables"
)

// iptablesFiles are the host's iptables multi-call binary (multi) with the extensions of extDir
// and every library they load, under the names kube-proxy runs (links beside multi).
func iptablesFiles(multi, extDir string) ([]File, error) {
	exts, err := filepath.Glob(filepath.Join(extDir, "*.so"))
	if err != nil || len(exts) == 0 {
		return nil, fmt.Errorf("no iptables extensions in %s (package iptables)", extDir)
	}
	libs, err := hostLibraries(append([]string{multi}, exts...)...)
	if err != nil {
		return nil, err
	}
	files := []File{{Path: multi, From: multi, Mode: 0o755}}
	for _, n := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"} {
		files = append(files, File{Path: filepath.Join(filepath.Dir(multi), n), Link: filepath.Base(multi)})
	}
	for _, p := range append(exts, libs...) {
		files = append(files, File{Path: p, From: p, Mode: 0o755})
	}
	return files, nil
}

// KubeProxyImage is registry.k8s.io/kube-proxy:<version>: the kube-proxy binary at
// /usr/local/bin and the host's iptables, as the upstream image has them.
func KubeProxyImage(kubeProxy, version string) (Image, error) {
	files, err := iptablesFiles(xtablesMulti, xtablesLib)
	if err != nil {
		return Image{}, err
	}
	files = append(files, File{Path: "usr/local/bin/kube-proxy", From: kubeProxy, Mode: 0o755}, File{Path: "tmp", Dir: true, Mode: 0o1777})
	return Image{
		Ref:        "registry.k8s.io/kube-proxy:" + version,
		Files:      files,
		Entrypoint: []string{"/usr/local/bin/kube-proxy"},
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	}, nil
}

// CoreDNSImage is registry.k8s.io/coredns/coredns:<version>: /coredns, as upstream.
func CoreDNSImage(coredns, version string) Image {
	return Image{
		Ref:        "registry.k8s.io/coredns/coredns:" + version,
		Files:      []File{{Path: "coredns", From: coredns, Mode: 0o755}, {Path: "tmp", Dir: true, Mode: 0o1777}},
		Entrypoint: []string{"/coredns"},
	}
}

// KonnectivityAgentImage is registry.k8s.io/kas-network-proxy/proxy-agent:<version>:
// /proxy-agent, as upstream.
func KonnectivityAgentImage(agent, version string) Image {
	return Image{
		Ref:        "registry.k8s.io/kas-network-proxy/proxy-agent:" + version,
		Files:      []File{{Path: "proxy-agent", From: agent, Mode: 0o755}, {Path: "tmp", Dir: true, Mode: 0o1777}},
		Entrypoint: []string{"/proxy-agent"},
	}
}

// imageConfig is the image's runtime configuration (User only when set: the digests of the
// images without one stay as they were).
func imageConfig(img Image) map[string]any {
	c := map[string]any{"Env": img.Env, "Entrypoint": img.Entrypoint, "Cmd": img.Cmd}
	if img.User != "" {
		c["User"] = img.User
	}
	return c
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
