package child

import (
	"os/exec"
	"syscall"
)

// dieWithParent asks the kernel to kill cmd when the thread that forks it ends; cmd's other
// process attributes (a process group, say) are kept.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
