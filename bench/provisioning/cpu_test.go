package main

import (
	"os/exec"
	"testing"
	"time"
)

// The sample finds this process and its children by role, and the machine's time.
func TestSampleCPU(t *testing.T) {
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	before := sampleCPU(child.Process.Pid, t.TempDir())
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; {
		// Use some CPU, so the bench's own time grows.
	}
	after := sampleCPU(child.Process.Pid, t.TempDir())
	if _, ok := after.roles["manager"]; !ok {
		t.Errorf("the child given as the manager is not sampled: roles %v", after.roles)
	}
	if after.roles["bench"] <= before.roles["bench"] {
		t.Errorf("the bench's CPU did not grow: %v -> %v", before.roles["bench"], after.roles["bench"])
	}
	// A machine busy all the while (a build beside the test) has no idle time between the two
	// samples, and the kernel's iowait counter may even step back a tick: all can fall a tick
	// short of busy.
	const tick = 0.01
	if busy, all := after.machineBusy-before.machineBusy, after.machine-before.machine; busy <= 0 || all < busy-tick {
		t.Errorf("machine busy %.2f s of %.2f s", busy, all)
	}
}
