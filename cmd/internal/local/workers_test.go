package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// A worker must reach the tenant apiserver's pod address, which it would route to its own pods
// if the tenant's pod range covered the admin cluster's.
func TestWorkerNetworkFits(t *testing.T) {
	p := &Plane{cfg: DefaultConfig()}
	for _, c := range []struct {
		podCIDR  string
		podCIDRs []string
		err      string
	}{
		{podCIDR: TenantPodCIDR},
		{podCIDR: "10.36.0.0/16", podCIDRs: []string{"10.36.0.0/16", "fd00::/48"}},
		{podCIDR: "10.244.0.0/16", err: "spec.networkProfile.podCidr 10.244.0.0/16 overlaps the admin cluster's pods (10.244.0.0/16)"},
		{podCIDR: "10.0.0.0/8", err: "overlaps"},
		{podCIDR: "10.244.7.0/24", err: "overlaps"},
		{podCIDRs: []string{"10.36.0.0/16", "10.244.0.0/20"}, err: "10.244.0.0/20 overlaps"},
	} {
		tcp := SampleTCP("t", "default")
		tcp.Spec.NetworkProfile = kamajiv1alpha1.NetworkProfileSpec{PodCIDR: c.podCIDR, PodCIDRs: c.podCIDRs}
		err := p.workerNetworkFits(tcp)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s %v: %v, want %q", c.podCIDR, c.podCIDRs, err, c.err)
		}
	}
}

func TestWorkersFlagBounds(t *testing.T) {
	for _, n := range []int{-1, 201} {
		cfg := DefaultConfig()
		cfg.Workers = n
		if err := cfg.normalize(); err == nil || !strings.Contains(err.Error(), "--workers") {
			t.Errorf("--workers %d: %v", n, err)
		}
	}
}

// The plane's worker stage waits while hack/up-bins.sh holds the worker builds' lock, and not
// at all when no build ran or the lock is free.
func TestWaitWorkerBuilds(t *testing.T) {
	cache := t.TempDir()
	if err := waitWorkerBuilds(context.Background(), cache); err != nil {
		t.Fatalf("no lock file: %v", err)
	}
	lock := WorkerBuildsLock(cache)
	if err := os.MkdirAll(filepath.Dir(lock), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(lock)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}

	// Held: a context that ends first gets its error back.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := waitWorkerBuilds(ctx, cache); !errors.Is(err, context.Canceled) {
		t.Fatalf("held lock, cancelled context: %v, want context.Canceled", err)
	}

	// Held, then released: the wait ends after the release, not before.
	done := make(chan error, 1)
	go func() { done <- waitWorkerBuilds(context.Background(), cache) }()
	select {
	case err := <-done:
		t.Fatalf("returned while the lock was held: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("after the release: %v", err)
	}
}
