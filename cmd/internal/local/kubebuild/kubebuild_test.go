package kubebuild

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

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
	b := &Builds{Script: script, Cache: dir, LogDir: filepath.Join(dir, "logs")}
	args := []string{"kube-apiserver@v1.33.13", "kube-scheduler@v1.33.13"}
	first := b.Ensure(args)
	if !first.Started || first.Done || first.Err != nil || !strings.Contains(first.Msg, "building kube-apiserver@v1.33.13 kube-scheduler@v1.33.13") {
		t.Fatalf("first ask: %+v", first)
	}
	if again := b.Ensure(args); again.Started || again.Done || !strings.Contains(again.Msg, "so far") {
		t.Fatalf("second ask while building: %+v", again)
	}
	if st := b.Wait(context.Background(), args); !st.Done {
		t.Fatalf("after the build: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "kube", "v1.33.13", "bin")); err != nil {
		t.Fatal(err)
	}
	if runs, _ := os.ReadFile(filepath.Join(dir, "runs")); strings.Count(string(runs), "built") != 1 {
		t.Errorf("the build ran %q", runs)
	}

	bad := []string{"kube-apiserver@v1.99.0"}
	b.Ensure(bad)
	st := b.Wait(context.Background(), bad)
	if !strings.Contains(st.Msg, "failed") || !strings.Contains(st.Msg, "tried again in") || st.Started {
		t.Errorf("failure: %+v", st)
	}
	b.Forget(bad) // a recent failure is kept: not tried again at once
	if st := b.Ensure(bad); st.Err == nil || st.Started {
		t.Errorf("after Forget of a failure: %+v", st)
	}
	if log, _ := os.ReadFile(filepath.Join(dir, "logs", "build-kube-apiserver-v1.99.0.log")); !strings.Contains(string(log), "no such version") {
		t.Errorf("build log %q", log)
	}
}

// Wait returns when the build ends, or when the caller gives up.
func TestBuildsWait(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "kube-bins.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nsleep ${SLEEP:-0.3}\nmkdir -p \"$KAMAJI_CACHE/done\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	b := &Builds{Script: script, Cache: dir, LogDir: filepath.Join(dir, "logs")}
	st := b.Wait(context.Background(), ControlPlane("v1.33.13"))
	if !st.Done || st.Err != nil {
		t.Fatalf("after the build: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "done")); err != nil {
		t.Fatal("Wait returned before the build ended")
	}
	if st := b.Wait(context.Background(), ControlPlane("v1.33.13")); !st.Done || st.Started {
		t.Errorf("a build done is done at once: %+v", st)
	}
	// Forgotten (its binaries deleted since), it runs again.
	b.Forget(ControlPlane("v1.33.13"))
	if st := b.Ensure(ControlPlane("v1.33.13")); !st.Started {
		t.Errorf("after Forget: %+v", st)
	}
	if st := b.Wait(context.Background(), ControlPlane("v1.33.13")); !st.Done {
		t.Errorf("the second build: %+v", st)
	}

	// The node's context kills the long build when the test ends.
	t.Setenv("SLEEP", "30")
	nodeCtx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	b.Ctx = nodeCtx
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st = b.Wait(ctx, ControlPlane("v1.34.0"))
	if st.Done || st.Err != nil || !st.Started {
		t.Errorf("a caller that gave up: %+v", st)
	}
}

// A build nobody asks for any more (its tenant deleted) stops; a waiting caller keeps one going,
// and a build asked for again after it stopped starts at once.
func TestBuildsUnwanted(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "kube-bins.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nsleep ${SLEEP:-30}\nmkdir -p \"$KAMAJI_CACHE/done\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	nodeCtx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	b := &Builds{Script: script, Cache: dir, LogDir: filepath.Join(dir, "logs"), Ctx: nodeCtx, Unwanted: 300 * time.Millisecond}
	args := ControlPlane("v1.33.13")
	if st := b.Ensure(args); !st.Started {
		t.Fatalf("first ask: %+v", st)
	}
	b.mu.Lock()
	first := b.running[strings.Join(args, " ")]
	b.mu.Unlock()
	select {
	case <-first.done:
	case <-time.After(20 * time.Second):
		t.Fatal("a build nobody asked for again kept running (its script sleeps 30 s)")
	}
	if log, _ := os.ReadFile(first.log); !strings.Contains(string(log), "stopped: nobody asked for this build any more") {
		t.Errorf("log of the stopped build: %q", log)
	}
	if st := b.Ensure(args); !st.Started || st.Err != nil {
		t.Errorf("asked again after it stopped: %+v (want a new build at once, not a failure held for %s)", st, RetryFailedAfter)
	}

	// A Wait in progress is someone asking: the build outlives Unwanted and ends well.
	t.Setenv("SLEEP", "1.5")
	other := ControlPlane("v1.34.0")
	if st := b.Wait(context.Background(), other); !st.Done {
		t.Errorf("a build with a caller waiting for it: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "done")); err != nil {
		t.Errorf("the waited-for build did not finish: %v", err)
	}
}
