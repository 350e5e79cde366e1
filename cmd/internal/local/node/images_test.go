package node

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestMatchGlobProjectImages(t *testing.T) {
	for _, tc := range []struct {
		pattern, image string
		want           []string
	}{
		{"*/kamaji:*", "ghcr.io/openhcp/kamaji:0.3.0", []string{"ghcr.io/openhcp", "0.3.0"}},
		{"*/kamaji-*:*", "ghcr.io/openhcp/kamaji-datastore-etcd:0.3.0", []string{"ghcr.io/openhcp", "datastore-etcd", "0.3.0"}},
		{"*/kamaji-*:*", "example.com/kamaji-datastore-example:0.1.0", []string{"example.com", "datastore-example", "0.1.0"}},
		// A registry port is part of $1: the stars stop at the first "/kamaji-", then the first ":".
		{"*/kamaji-*:*", "localhost:5000/kamaji-addon-coredns:dev", []string{"localhost:5000", "addon-coredns", "dev"}},
		{"*/kamaji:*", "ghcr.io/openhcp/kamaji-datastore-etcd:0.3.0", nil},
		{"*/kamaji-*:*", "ghcr.io/openhcp/kamaji:0.3.0", nil},
	} {
		got, ok := matchGlob(tc.pattern, tc.image)
		if ok != (tc.want != nil) || (ok && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("matchGlob(%q, %q) = %q, %v; want %q", tc.pattern, tc.image, got, ok, tc.want)
		}
	}
}

// fakeBin is a make-build bin folder with executables of these names.
func fakeBin(t *testing.T, names ...string) string {
	t.Helper()
	bin := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(bin, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin
}

func TestImageMapProjectImages(t *testing.T) {
	bin := fakeBin(t, "kamaji", "kamaji-datastore-etcd", "kamaji-datastore-example")
	m, err := LoadImages(filepath.Join(t.TempDir(), "absent.yaml"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m.Bin = bin
	for image, entry := range map[string]string{
		"ghcr.io/openhcp/kamaji:0.3.0":                "kamaji",
		"ghcr.io/openhcp/kamaji-datastore-etcd:0.3.0": "kamaji-datastore-etcd",
		"example.com/kamaji-datastore-example:0.1.0":  "kamaji-datastore-example",
	} {
		r, err := m.Resolve(image)
		if err != nil {
			t.Errorf("%s: %v", image, err)
			continue
		}
		if r.Dir != bin || r.Entrypoint != entry || r.ImageDir != "/usr/local/bin" {
			t.Errorf("%s resolves to %+v, want %s/%s in /usr/local/bin", image, r, bin, entry)
		}
	}
	// A plugin make build did not build is named, as a pull error would be.
	_, err = m.Resolve("ghcr.io/openhcp/kamaji-addon-coredns:0.3.0")
	var unknown *UnknownImageError
	if !errors.As(err, &unknown) || !strings.Contains(err.Error(), "kamaji-addon-coredns") {
		t.Errorf("unbuilt plugin: %v", err)
	}
	// Without --bin-dir the message says so.
	m.Bin = ""
	if _, err := m.Resolve("ghcr.io/openhcp/kamaji:0.3.0"); err == nil || !strings.Contains(err.Error(), "--bin-dir") {
		t.Errorf("no bin dir: %v", err)
	}
}

// An images.yaml written by an older version, without the project's rules, still maps them
// (the built-in rules come after the file's), and the file's own rules win.
func TestImageMapOldFileGetsDefaultRules(t *testing.T) {
	bin := fakeBin(t, "kamaji", "kamaji-datastore-etcd")
	other := fakeBin(t, "kamaji-datastore-etcd")
	file := filepath.Join(t.TempDir(), "images.yaml")
	old := "images:\n  - image: registry.k8s.io/kube-proxy:*\n    dir: $cache/kube/$1/bin\n    entrypoint: kube-proxy\n" +
		"  - image: my.registry/kamaji-datastore-etcd:*\n    dir: " + other + "\n    entrypoint: kamaji-datastore-etcd\n    imageDir: /bin\n"
	if err := os.WriteFile(file, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := LoadImages(file, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m.Bin = bin
	r, err := m.Resolve("ghcr.io/openhcp/kamaji:0.3.0")
	if err != nil || r.Dir != bin || r.Entrypoint != "kamaji" {
		t.Errorf("default rule after an old file: %+v %v", r, err)
	}
	r, err = m.Resolve("my.registry/kamaji-datastore-etcd:1")
	if err != nil || r.Dir != other || r.ImageDir != "/bin" {
		t.Errorf("the file's rule must win: %+v %v", r, err)
	}
	// A default rule that fails names itself, not the file.
	_, err = m.Resolve("registry.k8s.io/kube-apiserver:v9.9.9")
	if err == nil || !strings.Contains(err.Error(), "built-in rules") {
		t.Errorf("default rule failure: %v", err)
	}
}

// A version's folder without the image's binary (a build under way, which makes the folder
// first, or a folder holding only kubeadm) is built on demand, as a missing folder is.
func TestImageMapBuildsMissingBinary(t *testing.T) {
	cache := t.TempDir()
	dir := filepath.Join(cache, "kube", "v1.35.1", "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kubeadm"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := LoadImages(filepath.Join(t.TempDir(), "absent.yaml"), cache)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kube-apiserver@v1.35.1", "kube-controller-manager@v1.35.1", "kube-scheduler@v1.35.1"}
	for _, image := range []string{"registry.k8s.io/kube-apiserver:v1.35.1", "registry.k8s.io/kube-scheduler:v1.35.1"} {
		_, err := m.Resolve(image)
		var unknown *UnknownImageError
		if !errors.As(err, &unknown) || !slices.Equal(unknown.Build, want) || !strings.Contains(err.Error(), "is not an executable in "+dir) {
			t.Errorf("%s: %v (build %v), want the build %v", image, err, unknown, want)
		}
	}
	// A rule without a build still names the missing binary, and builds nothing.
	_, err = m.Resolve("registry.k8s.io/kube-proxy:v1.35.1")
	var unknown *UnknownImageError
	if !errors.As(err, &unknown) || len(unknown.Build) != 0 || !strings.Contains(err.Error(), `"kube-proxy"`) {
		t.Errorf("kube-proxy: %v", err)
	}
}

// An image of a Kubernetes version not built yet says how to build it.
func TestImageMapBuild(t *testing.T) {
	cache := t.TempDir()
	m, err := LoadImages(filepath.Join(cache, "absent.yaml"), cache)
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Resolve("registry.k8s.io/kube-scheduler:v1.33.13")
	var unknown *UnknownImageError
	if !errors.As(err, &unknown) || !slices.Equal(unknown.Build, []string{"kube-apiserver@v1.33.13", "kube-controller-manager@v1.33.13", "kube-scheduler@v1.33.13"}) {
		t.Fatalf("got %v (%+v)", err, unknown)
	}
	_, err = m.Resolve("rancher/kine:v0.99.0")
	if !errors.As(err, &unknown) || len(unknown.Build) != 0 {
		t.Fatalf("kine has no build rule: %v (%+v)", err, unknown)
	}
}
