// Package child starts the processes a test runs beside it (a datastore, a manager, a plugin's
// server) so that they end with the test binary, even one killed before its Cleanups run (by go
// test's timeout, an interrupt): an etcd or a mysqld left running holds its port and its data
// folder, and the next run finds them.
package child

import (
	"os/exec"
	"runtime"
)

// Start starts cmd and waits for it in the background; done is closed once it has exited
// (cmd.ProcessState is set by then). On Linux the kernel kills it (SIGKILL) when the test binary
// ends: the parent-death signal fires when the OS thread that forked the child ends, not the
// process, and Go hands threads around, so cmd is forked from a thread locked to the goroutine
// that waits for it. Elsewhere it is only stopped by whoever started it.
func Start(cmd *exec.Cmd) (done <-chan struct{}, err error) {
	dieWithParent(cmd)
	exited, started := make(chan struct{}), make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return exited, nil
}
