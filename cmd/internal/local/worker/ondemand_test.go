package worker

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openhcp/kamaji/cmd/internal/local/kubebuild"
)

// An image whose sources are unchanged is not made again (its files are not even read); a
// source rebuilt since is.
func TestBuildImagesSkipsUnchangedSources(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "kube-apiserver")
	if err := os.WriteFile(bin, []byte("version one"), 0o755); err != nil {
		t.Fatal(err)
	}
	reg := filepath.Join(dir, "registry")
	img, err := ProgramImage("registry.k8s.io/kube-apiserver:v1.36.3", map[string]string{"usr/local/bin/kube-apiserver": bin}, []string{"/usr/local/bin/kube-apiserver"}, "")
	if err != nil {
		t.Fatal(err)
	}
	imgs := []Image{img}
	first, err := BuildImages(reg, imgs)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(bin)
	// Same size and modification time, other bytes: taken as unchanged, so not read.
	if err := os.WriteFile(bin, []byte("version One"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(bin, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	second, err := BuildImages(reg, imgs)
	if err != nil || second[img.Ref] != first[img.Ref] {
		t.Fatalf("unchanged sources: %v (%v), want %s", second, err, first[img.Ref])
	}
	// A rebuilt binary (a new modification time) makes a new image.
	later := st.ModTime().Add(time.Second)
	if err := os.Chtimes(bin, later, later); err != nil {
		t.Fatal(err)
	}
	third, err := BuildImages(reg, imgs)
	if err != nil || third[img.Ref] == first[img.Ref] {
		t.Fatalf("rebuilt source: %v (%v), want a digest other than %s", third, err, first[img.Ref])
	}
	idx, err := readIndex(reg)
	if err != nil || idx.Images["registry.k8s.io/kube-apiserver:v1.36.3"].Digest != third[img.Ref] {
		t.Errorf("index %+v (%v)", idx, err)
	}
	// An image whose manifest went missing from the folder is made again.
	d := idx.Images["registry.k8s.io/kube-apiserver:v1.36.3"].Digest
	if err := os.Remove(filepath.Join(reg, blobsDir, strings.TrimPrefix(d, "sha256:"))); err != nil {
		t.Fatal(err)
	}
	if _, err := BuildImages(reg, imgs); err != nil {
		t.Fatal(err)
	}
	if !fileExists(filepath.Join(reg, blobsDir, strings.TrimPrefix(d, "sha256:"))) {
		t.Error("the missing manifest was not written again")
	}
}

// The admin node's registry makes a tenant version's control-plane images on their first pull:
// from the cache when the binaries are there, after one build when they are not (the pulls of
// the three images wait for it side by side), and answers at once for anything else.
func TestRegistryMakesControlPlaneOnFirstPull(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	script := filepath.Join(dir, "kube-bins.sh")
	// The fake build writes each binary asked for into the cache, or fails for v1.99.
	if err := os.WriteFile(script, []byte(`#!/bin/sh
for a in "$@"; do case "$a" in *@v1.99*) echo "no such version" >&2; exit 3 ;; esac; done
case "$1" in *@v1.34*) sleep 2 ;; *) sleep 0.5 ;; esac
echo "built $*" >> "$KAMAJI_CACHE/runs"
for a in "$@"; do
  mkdir -p "$KAMAJI_CACHE/kube/${a#*@}/bin"
  echo "$a" > "$KAMAJI_CACHE/kube/${a#*@}/bin/${a%@*}"
done
`), 0o755); err != nil {
		t.Fatal(err)
	}
	// v1.36.3 is in the cache already.
	prebuilt := filepath.Join(cache, "kube", "v1.36.3", "bin")
	if err := os.MkdirAll(prebuilt, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range controlPlaneNames {
		if err := os.WriteFile(filepath.Join(prebuilt, n), []byte(n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := filepath.Join(dir, "registry")
	var logMu sync.Mutex
	var logs []string
	src := &ControlPlaneSource{Cache: cache, Registry: reg,
		Builds: &kubebuild.Builds{Script: script, Cache: cache, LogDir: filepath.Join(dir, "logs"), Ctx: ctx},
		Logf: func(f string, a ...any) {
			logMu.Lock()
			defer logMu.Unlock()
			logs = append(logs, f)
		}}
	srv := httptest.NewServer(Registry{Dir: reg, Fill: src.Fill})
	defer srv.Close()
	// A registry that holds a pull for a short while only.
	short := httptest.NewServer(Registry{Dir: reg, Fill: src.Fill, Hold: 300 * time.Millisecond})
	defer short.Close()
	pullFrom := func(srv *httptest.Server, method, name, ref string) (int, string, string) {
		req, _ := http.NewRequest(method, srv.URL+"/v2/"+name+"/manifests/"+ref+"?ns=registry.k8s.io", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0, "", ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Status, string(body)
	}
	pull := func(method, name, ref string) (int, string) {
		code, _, body := pullFrom(srv, method, name, ref)
		return code, body
	}

	// In the cache: made at once, no build.
	if code, body := pull("HEAD", "kube-apiserver", "v1.36.3"); code != 200 {
		t.Fatalf("v1.36.3 from the cache: %d %s", code, body)
	}

	// Not in the cache: the three pulls wait for one build, then get their images.
	var wg sync.WaitGroup
	codes := make([]int, len(controlPlaneNames))
	for i, n := range controlPlaneNames {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i], _ = pull("HEAD", n, "v1.33.13") }()
	}
	wg.Wait()
	for i, n := range controlPlaneNames {
		if codes[i] != 200 {
			t.Errorf("%s:v1.33.13 after its build: %d", n, codes[i])
		}
	}
	if runs, _ := os.ReadFile(filepath.Join(cache, "runs")); strings.Count(string(runs), "built") != 1 ||
		!strings.Contains(string(runs), "kube-apiserver@v1.33.13 kube-controller-manager@v1.33.13 kube-scheduler@v1.33.13") {
		t.Errorf("builds: %q", runs)
	}
	if code, body := pull("GET", "kube-scheduler", "v1.33.13"); code != 200 || !strings.Contains(body, mediaLayer) {
		t.Errorf("GET kube-scheduler:v1.33.13: %d %s", code, body)
	}
	// Binaries deleted since their build (and their images gone): built again on a pull.
	if err := os.RemoveAll(filepath.Join(cache, "kube", "v1.33.13")); err != nil {
		t.Fatal(err)
	}
	idx, err := readIndex(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range controlPlaneNames {
		delete(idx.Images, "registry.k8s.io/"+n+":v1.33.13")
	}
	data, _ := json.Marshal(idx)
	if err := os.WriteFile(filepath.Join(reg, registryIndex), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := pull("HEAD", "kube-apiserver", "v1.33.13"); code != 200 {
		t.Errorf("kube-apiserver:v1.33.13 after its binaries were deleted: %d %s", code, body)
	}
	if runs, _ := os.ReadFile(filepath.Join(cache, "runs")); strings.Count(string(runs), "built kube-apiserver@v1.33.13") != 2 {
		t.Errorf("builds after the binaries were deleted: %q", runs)
	}

	logMu.Lock()
	if builds := strings.Count(strings.Join(logs, "\n"), "pull of"); builds != 2 || len(logs) != 5 {
		t.Errorf("logs %q", logs)
	}
	logMu.Unlock()

	// A build longer than the hold: 503 saying how far it is, in the status line a HEAD's
	// client reads (containerd quotes it); the next pull after the build gets the image.
	code, status, _ := pullFrom(short, "HEAD", "kube-apiserver", "v1.34.0")
	if code != http.StatusServiceUnavailable || !strings.Contains(status, "building kube-apiserver@v1.34.0") || !strings.Contains(status, "so far") {
		t.Errorf("v1.34.0 while building: %d %q", code, status)
	}
	if st := src.Builds.Wait(ctx, kubebuild.ControlPlane("v1.34.0")); !st.Done {
		t.Fatalf("the v1.34.0 build: %+v", st)
	}
	if code, status, _ = pullFrom(short, "HEAD", "kube-apiserver", "v1.34.0"); code != 200 {
		t.Errorf("v1.34.0 after its build: %d %q", code, status)
	}

	// A failed build: 503 naming it and its log, so the kubelet reports it and tries again.
	code, status, body := pullFrom(srv, "GET", "kube-apiserver", "v1.99.0")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "failed") || !strings.Contains(status, "build-kube-apiserver-v1.99.0") {
		t.Errorf("v1.99.0: %q %s", status, body)
	}

	// Anything else is not found, at once, with no build.
	for _, p := range [][2]string{{"kube-proxy", "v1.33.13"}, {"kube-apiserver", "latest"}, {"library/busybox", "latest"}} {
		if code, body := pull("GET", p[0], p[1]); code != 404 || !strings.Contains(body, "MANIFEST_UNKNOWN") {
			t.Errorf("%s:%s: %d %s", p[0], p[1], code, body)
		}
	}
	if runs, _ := os.ReadFile(filepath.Join(cache, "runs")); strings.Count(string(runs), "built") != 3 {
		t.Errorf("builds after the other pulls (v1.33.13 twice and v1.34.0 only): %q", runs)
	}

	// Without a build script a version not in the cache is not found.
	noBuild := &ControlPlaneSource{Cache: cache, Registry: reg}
	if err := noBuild.Fill(ctx, "registry.k8s.io", "kube-apiserver", "v1.32.0"); err != ErrNoImage {
		t.Errorf("without builds: %v", err)
	}
}
