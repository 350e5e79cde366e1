package local

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/openhcp/kamaji/cmd/internal/local/node"
)

// component is a host process of the plane: it outlives `kamaji local up` (its own session),
// logs to <state>/logs/<name>.log and is found again through <state>/run/<name>.pid and the
// marker in its environment.
type component struct {
	name string
	bin  string
	args []string
	env  []string
	// ready answers nil once the component serves.
	ready func(ctx context.Context) error
	// timeout for ready (30 s when zero).
	timeout time.Duration
	// unshareMount starts it in a mount namespace of its own (a worker node).
	unshareMount bool
}

func (p *Plane) logPath(name string) string { return p.cfg.path("logs", name+".log") }
func (p *Plane) pidPath(name string) string { return p.cfg.path("run", name+".pid") }

// StageError names the component that failed, with its log.
type StageError struct {
	Component string
	Log       string
	Err       error
}

func (e *StageError) Error() string {
	if e.Log == "" {
		return fmt.Sprintf("%s: %v", e.Component, e.Err)
	}
	return fmt.Sprintf("%s: %v (log: %s)", e.Component, e.Err, e.Log)
}

func (e *StageError) Unwrap() error { return e.Err }

// ensure starts the component unless it already runs, then waits until it is ready.
// It reports whether it was already running.
func (p *Plane) ensure(ctx context.Context, c component) (bool, error) {
	pid := p.runningPID(c.name)
	running := pid > 0
	exited := make(chan struct{})
	if running {
		// Not our child: watch it through /proc.
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for p.ours(pid) {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
			close(exited)
		}()
	} else {
		for _, d := range []string{"logs", "run"} {
			if err := os.MkdirAll(p.cfg.path(d), 0o755); err != nil {
				return false, err
			}
		}
		logf, err := os.OpenFile(p.logPath(c.name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return false, err
		}
		fmt.Fprintf(logf, "==> %s %s %s\n", time.Now().Format(time.RFC3339), c.bin, strings.Join(c.args, " "))
		cmd := exec.Command(c.bin, c.args...)
		cmd.Env = append(append(os.Environ(), node.MarkerEnv+"="+p.cfg.StateDir), c.env...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.Dir = p.cfg.StateDir
		// Its own session: it survives this command and a Ctrl-C in the terminal.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if c.unshareMount {
			// Go's child makes the new mount namespace private before exec.
			cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS
		}
		if err := cmd.Start(); err != nil {
			logf.Close()
			return false, &StageError{Component: c.name, Log: p.logPath(c.name), Err: err}
		}
		logf.Close()
		if err := os.WriteFile(p.pidPath(c.name), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			return false, err
		}
		go func() { _ = cmd.Wait(); close(exited) }()
	}
	if c.ready == nil {
		return running, nil
	}
	timeout := c.timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	if err := pollReady(ctx, timeout, exited, c.ready); err != nil {
		return running, &StageError{Component: c.name, Log: p.logPath(c.name), Err: err}
	}
	return running, nil
}

// pollReady calls ready until it answers nil, the process exits or the timeout passes.
func pollReady(ctx context.Context, timeout time.Duration, exited <-chan struct{}, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		last = ready(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before it was ready (last check: %v)", last)
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %v", timeout, last)
		case <-t.C:
		}
	}
}

// runningPID is the component's pid when it runs (and is ours), else 0.
func (p *Plane) runningPID(name string) int {
	data, err := os.ReadFile(p.pidPath(name))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || !p.ours(pid) {
		return 0
	}
	return pid
}

// ours tells whether pid is a live process carrying this plane's marker.
func (p *Plane) ours(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		return false
	}
	want := []byte(node.MarkerEnv + "=" + p.cfg.StateDir)
	for _, kv := range bytes.Split(env, []byte{0}) {
		if bytes.Equal(kv, want) {
			return true
		}
	}
	return false
}

// stop terminates a component: SIGTERM to its process group, SIGKILL after grace.
func (p *Plane) stop(name string, grace time.Duration) bool {
	pid := p.runningPID(name)
	if pid == 0 {
		_ = os.Remove(p.pidPath(name))
		return false
	}
	stopPID(pid, grace, p.ours)
	_ = os.Remove(p.pidPath(name))
	return true
}

func stopPID(pid int, grace time.Duration, alive func(int) bool) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100 && alive(pid); i++ {
		time.Sleep(50 * time.Millisecond)
	}
}

// Tail returns the last lines of a log file, for failure messages.
func Tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
