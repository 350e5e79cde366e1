package local_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openhcp/kamaji/cmd/internal/local"
)

// e2eLockFile serialises end-to-end runs on one machine: only one local plane fits (fixed
// interfaces, ports and network namespaces), and two `go test` runs started side by side
// (a CI job beside a developer's run) must take turns rather than fail each other.
const e2eLockFile = "/run/kamaji-local-e2e.lock"

// takePlaneSlot waits until no other end-to-end run holds the machine. A plane left behind by
// a test run that was killed (its state in a test's temporary folder, and no run holds the
// lock) is taken down with `kamaji local down`; a plane a person started (`make up`) fails the
// test: that one is not ours to wait for or take down.
func (e *e2e) takePlaneSlot() {
	t := e.t
	t.Helper()
	f, err := os.OpenFile(e2eLockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("opening %s: %v", e2eLockFile, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Logf("another end-to-end run holds %s; waiting for it to finish", e2eLockFile)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			t.Fatalf("locking %s: %v", e2eLockFile, err)
		}
	}
	t.Cleanup(func() { f.Close() }) // closing releases the lock
	if data, err := os.ReadFile(local.ActiveFile); err == nil {
		if st := strings.TrimSpace(string(data)); st != "" {
			if _, err := os.Stat(st); err == nil && leftByTest(st) {
				t.Logf("a plane left behind by a killed test run (state in %s): taking it down", st)
				if out, err := e.run(3*time.Minute, "local", "down", "--state-dir", st); err != nil {
					t.Fatalf("kamaji local down --state-dir %s: %v\n%s", st, err, out)
				}
			} else if err == nil {
				t.Fatalf("a local plane runs on this machine (state in %s), and only one fits: `make down` first to run this test", st)
			}
		}
	}
}

// leftByTest tells whether a plane's state folder is one an end-to-end test made (t.TempDir()).
func leftByTest(state string) bool {
	rel, err := filepath.Rel(os.TempDir(), state)
	return err == nil && !strings.HasPrefix(rel, "..") && strings.HasPrefix(rel, "TestLocalPlane")
}

func TestLeftByTest(t *testing.T) {
	for state, want := range map[string]bool{
		filepath.Join(os.TempDir(), "TestLocalPlaneKine624453228", "001", "state"): true,
		filepath.Join(os.TempDir(), "TestLocalPlane1", "001", "state"):             true,
		"/work/main/.local":                                                  false,
		filepath.Join(os.TempDir(), "my-plane"):                              false,
		filepath.Join(os.TempDir(), "..", "TestLocalPlane1", "001", "state"): false,
	} {
		if got := leftByTest(state); got != want {
			t.Errorf("leftByTest(%s) = %v, want %v", state, got, want)
		}
	}
}
