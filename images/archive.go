package main

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// Annotations of the archive's index.json entry: the tag, as OCI tools (skopeo's
// oci-archive:FILE:TAG) look it up, and the full reference, as containerd's import names it.
const (
	AnnotationRefName   = "org.opencontainers.image.ref.name"
	AnnotationContainer = "io.containerd.image.name"
)

// WriteArchive writes an OCI image layout holding imgs, a single image or, for several
// platforms, an index of them, as a tar at path. Every tar entry has mtime and root ownership,
// in name order, so the archive's bytes depend only on its content. It returns the digest of
// the top-level manifest.
func WriteArchive(path, ref, tag string, platforms []Platform, imgs []v1.Image, mtime time.Time) (v1.Hash, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".layout-")
	if err != nil {
		return v1.Hash{}, err
	}
	defer os.RemoveAll(dir)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	ann := layout.WithAnnotations(map[string]string{AnnotationRefName: tag, AnnotationContainer: ref})
	var digest v1.Hash
	if len(imgs) == 1 {
		if err := lp.AppendImage(imgs[0], ann, layout.WithPlatform(platforms[0])); err != nil {
			return v1.Hash{}, err
		}
		digest, err = imgs[0].Digest()
	} else {
		idx := imageIndex(platforms, imgs)
		if err := lp.AppendIndex(idx, ann); err != nil {
			return v1.Hash{}, err
		}
		digest, err = idx.Digest()
	}
	if err != nil {
		return v1.Hash{}, err
	}
	tmp := path + ".tmp"
	if err := tarDir(dir, tmp, mtime); err != nil {
		os.Remove(tmp)
		return v1.Hash{}, err
	}
	return digest, os.Rename(tmp, path)
}

func tarDir(dir, out string, mtime time.Time) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			rel += "/"
		}
		names = append(names, rel)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, n := range names {
		h := &tar.Header{Name: n, ModTime: mtime, Format: tar.FormatPAX}
		if strings.HasSuffix(n, "/") {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		src, err := os.Open(filepath.Join(dir, filepath.FromSlash(n)))
		if err != nil {
			return err
		}
		st, err := src.Stat()
		if err == nil {
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, st.Size()
			err = tw.WriteHeader(h)
		}
		if err == nil {
			_, err = io.Copy(tw, src)
		}
		src.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// Archive is an OCI archive unpacked into a directory, read back with go-containerregistry.
type Archive struct {
	Path  layout.Path
	Entry v1.Descriptor // the one entry of index.json: an image or an index
}

// Ref is the full reference the archive was built for.
func (a Archive) Ref() string { return a.Entry.Annotations[AnnotationContainer] }

// Images returns the archive's images, one per platform.
func (a Archive) Images() ([]v1.Image, error) {
	ii, err := a.Path.ImageIndex()
	if err != nil {
		return nil, err
	}
	if a.Entry.MediaType.IsImage() {
		img, err := ii.Image(a.Entry.Digest)
		if err != nil {
			return nil, err
		}
		return []v1.Image{img}, nil
	}
	idx, err := ii.ImageIndex(a.Entry.Digest)
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []v1.Image
	for _, d := range m.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// Index returns the archive's index when it holds several platforms.
func (a Archive) Index() (v1.ImageIndex, error) {
	ii, err := a.Path.ImageIndex()
	if err != nil {
		return nil, err
	}
	return ii.ImageIndex(a.Entry.Digest)
}

// ReadArchive unpacks the OCI archive at path into dir (which the caller removes) and opens it.
func ReadArchive(path, dir string) (Archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return Archive{}, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Archive{}, fmt.Errorf("%s: %w", path, err)
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if !filepath.IsLocal(name) {
			return Archive{}, fmt.Errorf("%s: entry %q leaves the archive", path, h.Name)
		}
		dst := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return Archive{}, err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return Archive{}, err
			}
			out, err := os.Create(dst)
			if err != nil {
				return Archive{}, err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return Archive{}, err
			}
		default:
			return Archive{}, fmt.Errorf("%s: entry %q is not a file or a directory", path, h.Name)
		}
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		return Archive{}, fmt.Errorf("%s: not an OCI image layout: %w", path, err)
	}
	ii, err := lp.ImageIndex()
	if err != nil {
		return Archive{}, err
	}
	m, err := ii.IndexManifest()
	if err != nil {
		return Archive{}, err
	}
	if len(m.Manifests) != 1 {
		return Archive{}, fmt.Errorf("%s: index.json has %d entries, want 1", path, len(m.Manifests))
	}
	return Archive{Path: lp, Entry: m.Manifests[0]}, nil
}
