// Package testutil builds plugin binaries for tests.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/openhcp/kamaji/sdk"
)

// BuildPlugin compiles the main package pkg into dir and returns its path and sha256.
func BuildPlugin(tb testing.TB, dir, pkg string) (path, sum string) {
	tb.Helper()
	path = filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", path, pkg)
	cmd.Env = append(os.Environ(), "GOFLAGS="+os.Getenv("GOFLAGS")+" -buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	sum, err := sdk.FileSHA256(path)
	if err != nil {
		tb.Fatal(err)
	}
	return path, sum
}
