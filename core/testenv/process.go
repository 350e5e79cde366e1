package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/openhcp/kamaji/sdk/testkit/child"
	"github.com/openhcp/kamaji/sdk/testkit/freeport"
)

// process is a child the plane started; it dies with the test binary (child.Start) so an
// aborted test run leaves nothing behind.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done <-chan struct{}
}

func startProcess(name, logPath, bin string, args ...string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so stop reaches what it starts; it dies with the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	done, err := child.Start(cmd)
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { <-done; logf.Close() }()
	return &process{name: name, cmd: cmd, log: logPath, done: done}, nil
}

func (p *process) stop() {
	if p == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the end of the process log, for error messages.
func (p *process) tail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// FreePort returns an unused loopback TCP port outside the kernel's ephemeral range (see
// package freeport for why).
func FreePort() (int, error) { return freeport.Get() }

// startOnFreePorts starts a server on n free ports and waits for ready. A port can still be
// taken between the pick and the server's bind (by another test package's server); then the
// server dies with "address already in use" and is started again on other ports.
func startOnFreePorts(n int, start func(ports []int) (*process, error), ready func(*process) error) (*process, error) {
	for attempt := 1; ; attempt++ {
		ports, err := freeport.GetN(n)
		if err != nil {
			return nil, err
		}
		p, err := start(ports)
		if err != nil {
			return nil, err
		}
		err = ready(p)
		if err == nil {
			return p, nil
		}
		taken := p.exited() && strings.Contains(p.tail(), "address already in use")
		p.stop()
		if !taken || attempt == 3 {
			return nil, err
		}
	}
}

// poll calls fn until it returns true, the process dies or the deadline passes.
func poll(ctx context.Context, p *process, what string, fn func() bool) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if fn() {
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited (%v) before %s; log %s:\n%s", p.name, p.cmd.ProcessState, what, p.log, p.tail())
		}
		select {
		case <-ctx.Done():
			tail := ""
			if p != nil {
				tail = fmt.Sprintf("; log %s:\n%s", p.log, p.tail())
			}
			return fmt.Errorf("timed out waiting for %s%s", what, tail)
		case <-t.C:
		}
	}
}
