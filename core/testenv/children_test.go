package testenv

import (
	"os"
	"os/exec"
	"slices"
	"testing"
)

// A started child is listed under its parent, and no longer once it has exited and been reaped.
func TestChildren(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if got := Children(os.Getpid()); !slices.Contains(got, cmd.Process.Pid) {
		t.Errorf("Children(self) = %v, want it to hold the sleep child %d", got, cmd.Process.Pid)
	}
	if got := Children(cmd.Process.Pid); len(got) != 0 {
		t.Errorf("Children(sleep) = %v, want none", got)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if got := Children(os.Getpid()); slices.Contains(got, cmd.Process.Pid) {
		t.Errorf("Children(self) = %v still holds the reaped child %d", got, cmd.Process.Pid)
	}
}
