package node

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

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

// A build runs once in the background, whoever asks; a failure is reported, not retried at once.
func TestBuildsOnDemand(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "kube-bins.sh")
	// The fake build creates the folder of the version it is asked for, or fails for v1.99.
	if err := os.WriteFile(script, []byte(`#!/bin/sh
for a in "$@"; do case "$a" in *@v1.99*) echo "no such version" >&2; exit 3 ;; esac; done
sleep 0.3
echo "built $*" >> "$KAMAJI_CACHE/runs"
mkdir -p "$KAMAJI_CACHE/kube/${1#*@}/bin"
`), 0o755); err != nil {
		t.Fatal(err)
	}
	b := &builds{script: script, cache: dir, logDir: filepath.Join(dir, "logs")}
	args := []string{"kube-apiserver@v1.33.13", "kube-scheduler@v1.33.13"}
	first := b.ensure(args)
	if !first.started || first.done || first.err != nil || !strings.Contains(first.msg, "building kube-apiserver@v1.33.13 kube-scheduler@v1.33.13") {
		t.Fatalf("first ask: %+v", first)
	}
	if again := b.ensure(args); again.started || again.done || !strings.Contains(again.msg, "so far") {
		t.Fatalf("second ask while building: %+v", again)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !b.ensure(args).done {
		if time.Now().After(deadline) {
			t.Fatal("the build never finished")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, "kube", "v1.33.13", "bin")); err != nil {
		t.Fatal(err)
	}
	if runs, _ := os.ReadFile(filepath.Join(dir, "runs")); strings.Count(string(runs), "built") != 1 {
		t.Errorf("the build ran %q", runs)
	}

	bad := []string{"kube-apiserver@v1.99.0"}
	b.ensure(bad)
	var st buildState
	for st = b.ensure(bad); st.err == nil; st = b.ensure(bad) {
		if time.Now().After(deadline) {
			t.Fatal("the failing build never ended")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(st.msg, "failed") || !strings.Contains(st.msg, "tried again in") || st.started {
		t.Errorf("failure: %+v", st)
	}
	if log, _ := os.ReadFile(filepath.Join(dir, "logs", "build-kube-apiserver-v1.99.0.log")); !strings.Contains(string(log), "no such version") {
		t.Errorf("build log %q", log)
	}
}
