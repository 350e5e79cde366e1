package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image contract other parts of the project rely on (the Helm chart): the binary at
// BinDir/<name>, run as the nonroot user.
const (
	BinDir    = "/usr/local/bin"
	User      = "65532:65532"
	CAFile    = "/etc/ssl/certs/ca-certificates.crt"
	nonrootID = 65532
)

// Labels set on every image (OCI annotation keys).
const (
	LabelVersion  = "org.opencontainers.image.version"
	LabelSource   = "org.opencontainers.image.source"
	LabelRevision = "org.opencontainers.image.revision"
	LabelTitle    = "org.opencontainers.image.title"
	LabelCreated  = "org.opencontainers.image.created"
)

// Meta is what every image of one build shares.
type Meta struct {
	Created  time.Time // the commit time: the same commit gives the same digests
	Revision string
	Source   string
}

type tarFile struct {
	name     string
	mode     int64
	uid, gid int
	dir      bool
	body     []byte
}

// tarLayer is an uncompressed tar of files in the given order, every entry stamped with
// mtime, then a gzip layer of it. Built in memory: the largest binary is ~100 MB.
func tarLayer(files []tarFile, mtime time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{
			Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.gid, ModTime: mtime,
			Typeflag: tar.TypeReg, Size: int64(len(f.body)), Format: tar.FormatPAX,
		}
		if f.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.DefaultCompression), tarball.WithCompressedCaching)
}

// BaseLayer holds what every image shares: the nonroot user, a writable /tmp and the CA bundle
// read from caFile. Its digest is the same in every image of a build, so a registry stores it once.
func BaseLayer(caFile string, mtime time.Time) (v1.Layer, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA certificates: %w (install the ca-certificates package or pass --ca-file)", err)
	}
	passwd := "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group := "root:x:0:\nnonroot:x:65532:\n"
	return tarLayer([]tarFile{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, body: []byte(group)},
		{name: "etc/passwd", mode: 0o644, body: []byte(passwd)},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: CAFile[1:], mode: 0o644, body: ca},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, uid: nonrootID, gid: nonrootID, dir: true},
		// go-plugin puts the plugins' sockets in the temporary directory.
		{name: "tmp/", mode: 0o1777, dir: true},
	}, mtime)
}

// BinaryLayer holds the one binary at BinDir/name, owned by root and executable by all.
func BinaryLayer(binFile, name string, mtime time.Time) (v1.Layer, error) {
	b, err := os.ReadFile(binFile)
	if err != nil {
		return nil, err
	}
	return tarLayer([]tarFile{
		{name: "usr/", mode: 0o755, dir: true},
		{name: "usr/local/", mode: 0o755, dir: true},
		{name: "usr/local/bin/", mode: 0o755, dir: true},
		{name: BinDir[1:] + "/" + name, mode: 0o755, body: b},
	}, mtime)
}

// NewImage assembles the image of t for one platform from the shared base layer and the
// target's binary layer.
func NewImage(t Target, p Platform, base, bin v1.Layer, m Meta) (v1.Image, error) {
	created := v1.Time{Time: m.Created.UTC()}
	cfg := &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      created,
		RootFS:       v1.RootFS{Type: "layers"}, // mutate.Append fills the diff IDs; runtimes require the type
		Config: v1.Config{
			User:       User,
			Entrypoint: []string{BinDir + "/" + t.Name},
			Cmd:        t.Args,
			Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=" + CAFile},
			WorkingDir: "/",
			Labels: map[string]string{
				LabelVersion:  t.Version,
				LabelSource:   m.Source,
				LabelRevision: m.Revision,
				LabelTitle:    t.Name,
				LabelCreated:  created.Format(time.RFC3339),
			},
		},
	}
	if m.Source == "" {
		delete(cfg.Config.Labels, LabelSource) // a --plugin module without --source: no source is better than this repository's
	}
	from := t.Dir
	if t.Module != "" {
		from = t.Module // not the builder's local path: the same sources give the same image anywhere
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	return mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{
			Created: created, CreatedBy: "kamaji images: nonroot user, /tmp, CA certificates"}},
		mutate.Addendum{Layer: bin, MediaType: types.OCILayer, History: v1.History{
			Created: created, CreatedBy: fmt.Sprintf("kamaji images: %s/%s %s from %s", BinDir, t.Name, t.Version, from)}},
	)
}
