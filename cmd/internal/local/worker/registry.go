package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// The registry's content on disk: blobs by digest, and an index of image references.
const (
	registryIndex = "index.json"
	blobsDir      = "blobs/sha256"
)

// Descriptor is an image manifest in the registry's index.
type Descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	// Source, in the registry's index only, stamps what the image was made of (sourceStamp).
	Source string `json:"source,omitempty"`
}

// registryIndexFile maps full references (docker.io/library/busybox:latest) to manifests.
type registryIndexFile struct {
	Images map[string]Descriptor `json:"images"`
}

func readIndex(dir string) (registryIndexFile, error) {
	idx := registryIndexFile{Images: map[string]Descriptor{}}
	data, err := os.ReadFile(filepath.Join(dir, registryIndex))
	if errors.Is(err, os.ErrNotExist) {
		return idx, nil
	}
	if err != nil {
		return idx, err
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return idx, fmt.Errorf("%s: %w", filepath.Join(dir, registryIndex), err)
	}
	if idx.Images == nil {
		idx.Images = map[string]Descriptor{}
	}
	return idx, nil
}

// Registry serves the images of a folder over the read side of the OCI distribution API, as
// containerd pulls through a mirror: GET and HEAD of /v2/<name>/manifests/<tag or digest> and
// /v2/<name>/blobs/<digest>. containerd names the registry the image is from in the ns query
// parameter, so docker.io/library/busybox and registry.k8s.io/pause are told apart.
type Registry struct {
	Dir string
	// Fill, when set, is asked for a manifest the folder does not hold: nil when it made the
	// image (looked up again), ErrNoImage when it does not make it (MANIFEST_UNKNOWN), another
	// error when it could not make it yet (503, with the error as the status line's reason,
	// which containerd's error, and so the pod's ErrImagePull message, quotes). The request
	// waits while it works, up to Hold.
	Fill func(ctx context.Context, ns, name, ref string) error
	// Hold bounds a Fill (DefaultHold when zero).
	Hold time.Duration
}

// DefaultHold is how long a pull is held while its image is made: containerd waits 30 s for a
// response's headers (its ResponseHeaderTimeout), and a pull cut short by it tells nothing.
const DefaultHold = 20 * time.Second

var (
	manifestPath = regexp.MustCompile(`^/v2/(.+)/manifests/([^/]+)$`)
	blobPath     = regexp.MustCompile(`^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$`)
)

func (r Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		registryError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "read-only registry")
		return
	}
	if req.URL.Path == "/v2/" || req.URL.Path == "/v2" {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		w.WriteHeader(http.StatusOK)
		return
	}
	if m := manifestPath.FindStringSubmatch(req.URL.Path); m != nil {
		ns := req.URL.Query().Get("ns")
		d, ok := r.lookup(ns, m[1], m[2])
		if !ok && r.Fill != nil {
			hold := r.Hold
			if hold == 0 {
				hold = DefaultHold
			}
			ctx, cancel := context.WithTimeout(req.Context(), hold)
			err := r.Fill(ctx, ns, m[1], m[2])
			cancel()
			switch {
			case err == nil:
				d, ok = r.lookup(ns, m[1], m[2])
			case !errors.Is(err, ErrNoImage):
				unavailable(w, req, m[1]+":"+m[2]+": "+err.Error())
				return
			}
		}
		if !ok {
			registryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "no image "+m[1]+":"+m[2]+" is built on this machine")
			return
		}
		r.serveBlob(w, req, d.Digest, d.MediaType)
		return
	}
	if m := blobPath.FindStringSubmatch(req.URL.Path); m != nil {
		r.serveBlob(w, req, m[2], "application/octet-stream")
		return
	}
	registryError(w, http.StatusNotFound, "NAME_UNKNOWN", "not found")
}

// AnyTag, as an indexed image's tag, serves that image for every tag of its repository: the
// project's own images, whose tags follow each module's version.
const AnyTag = "*"

// lookup finds a manifest by tag or digest. Without ns (a client talking to the registry
// directly) the name is matched under any registry.
func (r Registry) lookup(ns, name, ref string) (Descriptor, bool) {
	idx, err := readIndex(r.Dir)
	if err != nil {
		return Descriptor{}, false
	}
	// An exact tag or digest first; then an image indexed with the tag "*" (AnyTag), which
	// stands for every tag of its repository.
	for _, wild := range []bool{false, true} {
		for full, d := range idx.Images {
			host, repo, tag := splitRef(full)
			if repo != name || (ns != "" && ns != host) {
				continue
			}
			if !wild && (ref == tag || ref == d.Digest) {
				return d, true
			}
			if wild && tag == AnyTag && !strings.HasPrefix(ref, "sha256:") {
				return d, true
			}
		}
	}
	return Descriptor{}, false
}

// splitRef splits docker.io/library/busybox:latest into its host, repository and tag.
func splitRef(ref string) (host, repo, tag string) {
	host, rest, _ := strings.Cut(ref, "/")
	repo, tag = rest, "latest"
	if i := strings.LastIndex(rest, ":"); i > 0 {
		repo, tag = rest[:i], rest[i+1:]
	}
	return host, repo, tag
}

func (r Registry) serveBlob(w http.ResponseWriter, req *http.Request, digest, mediaType string) {
	f, err := os.Open(filepath.Join(r.Dir, blobsDir, strings.TrimPrefix(digest, "sha256:")))
	if err != nil {
		registryError(w, http.StatusNotFound, "BLOB_UNKNOWN", "no blob "+digest)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Docker-Content-Digest", digest)
	http.ServeContent(w, req, "", time.Time{}, f)
}

// unavailable answers 503 with msg as the status line's reason phrase, where a HEAD request's
// client (containerd resolves with HEAD) still reads it; the body repeats it for a GET.
func unavailable(w http.ResponseWriter, req *http.Request, msg string) {
	reason := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, msg)
	if hj, ok := w.(http.Hijacker); ok {
		conn, buf, err := hj.Hijack()
		if err == nil {
			defer conn.Close()
			body, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": "UNAVAILABLE", "message": msg}}})
			fmt.Fprintf(buf, "HTTP/1.1 503 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", reason, len(body))
			if req.Method != http.MethodHead {
				_, _ = buf.Write(body)
			}
			_ = buf.Flush()
			return
		}
	}
	registryError(w, http.StatusServiceUnavailable, "UNAVAILABLE", msg)
}

func registryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

// serveRegistry serves the registry on addr until ctx ends.
func serveRegistry(ctx context.Context, addr string, reg Registry) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("the worker's registry: %w", err)
	}
	srv := &http.Server{Handler: reg, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() { _ = srv.Serve(l) }()
	return nil
}
