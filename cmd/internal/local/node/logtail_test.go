package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// What a container that exits with an error under FallbackToLogsOnError leaves in its status:
// the end of this start's log, as a kubelet gives it (80 lines, 2048 bytes at most).
func TestLogTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kube-apiserver.log")
	earlier := "==> start #0\nan earlier start's last words\n==> exit 1\n==> start #1\n"
	now := "Usage:\n  kube-apiserver [flags]\n\nError: unknown flag: --no-such-flag\n"
	if err := os.WriteFile(path, []byte(earlier+now), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := logTail(path, int64(len(earlier))); got != strings.TrimRight(now, "\n") {
		t.Fatalf("tail of this start %q", got)
	}
	var long strings.Builder
	for i := range 200 {
		fmt.Fprintf(&long, "line %d\n", i)
	}
	if err := os.WriteFile(path, []byte(long.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	got := logTail(path, 0)
	lines := strings.Split(got, "\n")
	if len(lines) != 80 || lines[79] != "line 199" || len(got) > 2048 {
		t.Fatalf("%d lines, last %q, %d bytes", len(lines), lines[len(lines)-1], len(got))
	}
}
