// Package benchtb lets bench programs use sdk/testkit helpers outside go test.
package benchtb

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// TB lets a main program use sdk/testkit, whose helpers take a testing.TB. It implements
// what testkit calls (Helper, Cleanup, TempDir, Fatal, Fatalf, Logf); the embedded nil
// testing.TB only completes the interface, so any other method panics, loudly, should testkit
// start calling it.
type TB struct {
	testing.TB

	mu       sync.Mutex
	cleanups []func()
	// Prog prefixes fatal messages.
	Prog string
}

func (t *TB) Helper() {}

func (t *TB) Name() string { return "bench" }

func (t *TB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *TB) TempDir() string {
	dir, err := os.MkdirTemp("", "kamaji-bench-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func (t *TB) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

func (t *TB) Fatal(args ...any) { t.fail(fmt.Sprint(args...)) }

func (t *TB) Fatalf(format string, args ...any) { t.fail(fmt.Sprintf(format, args...)) }

func (t *TB) fail(msg string) {
	fmt.Fprintln(os.Stderr, t.Prog+":", msg)
	t.RunCleanups()
	os.Exit(1)
}

// RunCleanups runs the registered functions once, last registered first.
func (t *TB) RunCleanups() {
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
