package manager

import (
	"os"
	"runtime/debug"
	"strconv"
	"testing"
)

func TestTuneGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })

	t.Setenv("GOGC", "200") // the operator's value: left as the runtime read it
	if got, set := TuneGC(); set || got != "200" {
		t.Errorf("with GOGC=200 in the environment: TuneGC() = %q, %v; want \"200\", false", got, set)
	}
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("with GOGC=200 in the environment the target became %d; want it untouched", p)
	}

	t.Setenv("GOGC", "")
	// An empty GOGC is still set: the runtime reads it as its default, and so do we.
	if _, set := TuneGC(); set {
		t.Error("with GOGC set (empty) in the environment, TuneGC changed the target")
	}
}

func TestTuneGCDefault(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	unsetenv(t, "GOGC")
	got, set := TuneGC()
	if !set || got != strconv.Itoa(GOGC) {
		t.Errorf("without GOGC: TuneGC() = %q, %v; want %q, true", got, set, strconv.Itoa(GOGC))
	}
	if p := debug.SetGCPercent(100); p != GOGC {
		t.Errorf("without GOGC the collector's target is %d; want %d", p, GOGC)
	}
}

// unsetenv removes key for the test, restoring it after (t.Setenv records the value to restore).
func unsetenv(t *testing.T, key string) {
	t.Helper()
	t.Setenv(key, "")
	if err := os.Unsetenv(key); err != nil {
		t.Fatal(err)
	}
}
