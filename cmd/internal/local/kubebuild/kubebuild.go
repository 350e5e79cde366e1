// Package kubebuild runs hack/kube-bins.sh for a node that was asked for an image whose
// binaries are not in the cache yet (a tenant at a Kubernetes version the plane has not built):
// the process node while a container waits, the kubelet node's registry while a pull waits.
package kubebuild

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Builds runs one build per set of arguments at a time, in the background, with its log in
// LogDir.
type Builds struct {
	Script string // hack/kube-bins.sh; empty: no builds on demand
	Cache  string // the kamaji cache folder the script fills (KAMAJI_CACHE)
	LogDir string
	// Ctx is the node's: a build stops with the node, not with the pod that asked for it.
	Ctx context.Context
	// Unwanted stops a running build that nobody has asked for (an Ensure, or a Wait in
	// progress) for that long: the tenant that wanted the version was deleted, or moved to
	// another one. It must exceed the callers' longest interval between two asks. Zero: a
	// build always runs to its end. A build asked for again after it was stopped starts at
	// once (the Go build cache keeps what it had done).
	Unwanted time.Duration

	mu      sync.Mutex
	running map[string]*build
}

type build struct {
	args    []string
	log     string
	started time.Time
	done    chan struct{}
	err     error
	ended   time.Time

	// Guarded by Builds.mu.
	asked     time.Time // the last Ensure or Wait
	waiters   int       // Waits in progress
	abandoned bool      // stopped by Unwanted
}

// RetryFailedAfter is how long a failed build is reported before it is tried again.
const RetryFailedAfter = 5 * time.Minute

// State is where a build stands, as a waiting container or pull shows it.
type State struct {
	// Started is true the first time a build is asked for (the caller says so, once).
	Started bool
	// Done is true once the build succeeded; Err is the failure of the last attempt.
	Done bool
	Err  error
	Msg  string
}

// ControlPlane are the arguments that build a Kubernetes version's control-plane binaries.
func ControlPlane(version string) []string {
	return []string{"kube-apiserver@" + version, "kube-controller-manager@" + version, "kube-scheduler@" + version}
}

// Ensure starts the build if it is not running (or failed long enough ago) and says where it is.
func (b *Builds) Ensure(args []string) State {
	st, _ := b.ensure(args, false)
	return st
}

// Forget drops the record of a build of args that ended well, so that the next Ensure builds
// again: a caller that still misses the binaries after it (deleted since) needs a new build. A
// running build and a recent failure (retried after RetryFailedAfter) are kept.
func (b *Builds) Forget(args []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.running[strings.Join(args, " ")]
	if cur == nil {
		return
	}
	select {
	case <-cur.done:
		if cur.err == nil {
			delete(b.running, strings.Join(args, " "))
		}
	default:
	}
}

// Wait is Ensure, then waits until the build ends or ctx does, and says where it is then.
func (b *Builds) Wait(ctx context.Context, args []string) State {
	st, cur := b.ensure(args, true)
	if st.Done || st.Err != nil {
		return st
	}
	select {
	case <-cur.done:
	case <-ctx.Done():
	}
	b.mu.Lock()
	cur.waiters--
	b.mu.Unlock()
	started := st.Started
	st = b.Ensure(args) // running: where it is now; ended: its outcome
	st.Started = started
	return st
}

// ensure is Ensure; with wait, a running build counts one more waiter (Wait takes it off).
func (b *Builds) ensure(args []string, wait bool) (State, *build) {
	key := strings.Join(args, " ")
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running == nil {
		b.running = map[string]*build{}
	}
	cur := b.running[key]
	if cur != nil {
		select {
		case <-cur.done:
			if cur.err == nil {
				return State{Done: true}, cur
			}
			if !cur.abandoned && time.Since(cur.ended) < RetryFailedAfter {
				return State{Err: cur.err, Msg: fmt.Sprintf("building %s failed: %v (log %s; tried again in %s)",
					key, cur.err, cur.log, (RetryFailedAfter - time.Since(cur.ended)).Round(time.Second))}, cur
			}
		default:
			cur.asked = time.Now()
			if wait {
				cur.waiters++
			}
			return State{Msg: fmt.Sprintf("building %s from the Go module proxy: %s so far, minutes on a first build (log %s)",
				key, time.Since(cur.started).Round(time.Second), cur.log)}, cur
		}
	}
	name := strings.NewReplacer("@", "-", "/", "-").Replace(strings.Join(args, "_"))
	now := time.Now()
	cur = &build{args: args, log: filepath.Join(b.LogDir, "build-"+name+".log"), started: now, asked: now, done: make(chan struct{})}
	if wait {
		cur.waiters++
	}
	b.running[key] = cur
	ctx := b.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithCancel(ctx)
	go cur.run(ctx, b.Script, b.Cache)
	if b.Unwanted > 0 {
		go b.stopWhenUnwanted(cur, cancel)
	} else {
		go func() { <-cur.done; cancel() }()
	}
	return State{Started: true, Msg: fmt.Sprintf("building %s from the Go module proxy (minutes on a first build; log %s)", key, cur.log)}, cur
}

// stopWhenUnwanted cancels the build once nobody has asked for it for b.Unwanted.
func (b *Builds) stopWhenUnwanted(c *build, cancel context.CancelFunc) {
	defer cancel()
	tick := time.NewTicker(min(b.Unwanted/4, 10*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		b.mu.Lock()
		unwanted := c.waiters == 0 && time.Since(c.asked) > b.Unwanted
		if unwanted {
			c.abandoned = true
		}
		b.mu.Unlock()
		if unwanted {
			cancel()
			<-c.done
			return
		}
	}
}

func (c *build) run(ctx context.Context, script, cache string) {
	defer func() { c.ended = time.Now(); close(c.done) }()
	if err := os.MkdirAll(filepath.Dir(c.log), 0o755); err != nil {
		c.err = err
		return
	}
	logf, err := os.Create(c.log)
	if err != nil {
		c.err = err
		return
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, script, c.args...)
	cmd.Env = append(os.Environ(), "KAMAJI_CACHE="+cache)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The script's go builds die with it: it runs in its own process group, killed as a whole.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Run(); err != nil {
		c.err = fmt.Errorf("%s %s: %w", filepath.Base(script), strings.Join(c.args, " "), err)
		if ctx.Err() != nil {
			fmt.Fprintf(logf, "\nstopped: nobody asked for this build any more, or the node stopped\n")
		}
	}
}
