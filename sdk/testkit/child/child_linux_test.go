package child_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/openhcp/kamaji/sdk/testkit/child"
)

const orphanEnv = "CHILD_TEST_ORPHAN"

// A child whose test binary ends without stopping it (killed by go test's timeout, an
// interrupted bench: no Cleanup runs) does not outlive it, even when the goroutine that started
// it has long returned.
func TestChildDiesWithTheTestBinary(t *testing.T) {
	if arg := os.Getenv(orphanEnv); arg != "" {
		done := make(chan struct{})
		go func() { // the starting goroutine ends first, as a test's does
			defer close(done)
			if _, err := child.Start(exec.Command("sleep", arg)); err != nil {
				fmt.Println("start:", err)
				os.Exit(2)
			}
		}()
		<-done
		os.Exit(0)
	}
	// A sleep no other process runs: its argument is unique to this test run.
	arg := fmt.Sprintf("%d.%d", 3600+os.Getpid()%1000, time.Now().UnixNano()%1000000)
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildDiesWithTheTestBinary$")
	cmd.Env = append(os.Environ(), orphanEnv+"="+arg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the test binary starting the child: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		for _, pid := range sleeping(arg) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for pids := sleeping(arg); len(pids) > 0; pids = sleeping(arg) {
		select {
		case <-deadline:
			t.Fatalf("the child (pid %v) still runs 30 s after the test binary that started it exited", pids)
		case <-tick.C:
		}
	}
}

// The child's exit is seen: done closes and the process state is there.
func TestStartReportsTheExit(t *testing.T) {
	cmd := exec.Command("sh", "-c", "exit 3")
	done, err := child.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("done not closed 30 s after sh exited")
	}
	if got := cmd.ProcessState.ExitCode(); got != 3 {
		t.Fatalf("exit code %d, want 3", got)
	}
	if _, err := child.Start(exec.Command("/nonexistent/program")); err == nil {
		t.Fatal("starting a missing program succeeded")
	}
}

// sleeping lists the processes running `sleep arg`.
func sleeping(arg string) []int {
	var pids []int
	want := []byte("sleep\x00" + arg + "\x00")
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.HasSuffix(b, want) {
			if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}
