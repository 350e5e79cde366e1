package node

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

// builds runs hack/kube-bins.sh for images whose binaries are not in the cache yet (a tenant
// at a Kubernetes version the plane has not built): one build per set of arguments at a time,
// in the background, with its log in the state folder. Containers wait meanwhile, showing the
// progress in their waiting message.
type builds struct {
	script string // hack/kube-bins.sh; empty: no builds on demand
	cache  string
	logDir string
	// ctx is the node's: a build stops with the node, not with the pod that asked for it.
	ctx context.Context

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
}

// retryFailedAfter is how long a failed build is reported before it is tried again.
const retryFailedAfter = 5 * time.Minute

// buildState is what a waiting container shows.
type buildState struct {
	// started is true the first time a build is asked for (an Event says so).
	started bool
	// done is true once the binaries are there; err is the failure of the last attempt.
	done bool
	err  error
	msg  string
}

// ensure starts the build if it is not running (or failed long enough ago) and says where it is.
func (b *builds) ensure(args []string) buildState {
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
				return buildState{done: true}
			}
			if time.Since(cur.ended) < retryFailedAfter {
				return buildState{err: cur.err, msg: fmt.Sprintf("building %s failed: %v (log %s; tried again in %s)",
					key, cur.err, cur.log, (retryFailedAfter - time.Since(cur.ended)).Round(time.Second))}
			}
		default:
			return buildState{msg: fmt.Sprintf("building %s from the Go module proxy: %s so far, minutes on a first build (log %s)",
				key, time.Since(cur.started).Round(time.Second), cur.log)}
		}
	}
	name := strings.NewReplacer("@", "-", "/", "-").Replace(strings.Join(args, "_"))
	cur = &build{args: args, log: filepath.Join(b.logDir, "build-"+name+".log"), started: time.Now(), done: make(chan struct{})}
	b.running[key] = cur
	ctx := b.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	go cur.run(ctx, b.script, b.cache)
	return buildState{started: true, msg: fmt.Sprintf("building %s from the Go module proxy (minutes on a first build; log %s)", key, cur.log)}
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
	}
}
