package main

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// mainTB lets a main program use sdk/testkit, whose helpers take a testing.TB. It implements
// what testkit calls (Helper, Cleanup, TempDir, Fatal, Fatalf, Logf); the embedded nil
// testing.TB only completes the interface, so any other method panics, loudly, should testkit
// start calling it.
type mainTB struct {
	testing.TB

	mu       sync.Mutex
	cleanups []func()
}

func (t *mainTB) Helper() {}

func (t *mainTB) Name() string { return "bench" }

func (t *mainTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *mainTB) TempDir() string {
	dir, err := os.MkdirTemp("", "kamaji-bench-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func (t *mainTB) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

func (t *mainTB) Fatal(args ...any) { t.fail(fmt.Sprint(args...)) }

func (t *mainTB) Fatalf(format string, args ...any) { t.fail(fmt.Sprintf(format, args...)) }

func (t *mainTB) fail(msg string) {
	fmt.Fprintln(os.Stderr, "plugintransport:", msg)
	t.runCleanups()
	os.Exit(1)
}

// runCleanups runs the registered functions once, last registered first.
func (t *mainTB) runCleanups() {
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
