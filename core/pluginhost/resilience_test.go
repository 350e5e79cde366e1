package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/openhcp/kamaji/core/settings"
)

// faultplugin (internal/faultplugin) starts slowly, hangs its Probe or reports its pid on
// request.
var (
	faultOnce sync.Once
	faultBin  string
	faultErr  error
)

func faultPlugin(t *testing.T, kind settings.PluginKind, name string, args ...string) settings.Plugin {
	t.Helper()
	faultOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kamaji-pluginhost-fault-")
		if err != nil {
			faultErr = err
			return
		}
		faultBin = filepath.Join(dir, "faultplugin")
		out, err := exec.Command("go", "build", "-o", faultBin, "github.com/openhcp/kamaji/core/pluginhost/internal/faultplugin").CombinedOutput()
		if err != nil {
			faultErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if faultErr != nil {
		t.Fatal(faultErr)
	}
	p := settings.Plugin{Kind: kind, Name: name, Path: faultBin, SHA256: mustSHA(t, faultBin), Args: append([]string{"-kind", string(kind), "-name", name}, args...)}
	if kind == settings.KindAddon {
		p.Addons = []string{name}
	} else {
		p.Drivers = []string{name}
	}
	return p
}

// clock is a settable clock for the backoff; probes and starts keep real time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 15, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// poll waits for cond, failing the test after timeout.
func poll(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, timeout, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("timed out waiting until %s", what)
	}
}

func killAndWait(t *testing.T, c pluginClient) {
	t.Helper()
	if err := syscall.Kill(c.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "the killed plugin is seen as exited", c.Exited)
}

func starting(h *Host, name string) bool {
	inst := h.plugins[name]
	inst.mu.Lock()
	defer inst.mu.Unlock()
	return inst.starting != nil
}

// A plugin that crashes on every use is restarted after 1s, 2s, 4s, ... up to MaxBackoff, and
// each error says so; a plugin that ran for StableAfter starts again from MinBackoff.
func TestBackoffGrowsAcrossCrashLoopsAndResetsAfterAStableRun(t *testing.T) {
	path, sha := testPlugin(t)
	clk := newClock()
	h := New([]settings.Plugin{entry(path, sha)}, Options{Now: clk.Now, MaxBackoff: 4 * time.Second, StableAfter: time.Hour, ProbeInterval: -1})
	defer h.Close()
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		c, _, err := h.DataStore(context.Background(), "fake")
		if err != nil {
			t.Fatalf("restart %d: %v", i, err)
		}
		clk.Add(time.Minute) // a run shorter than StableAfter
		killAndWait(t, c)
		for range 2 { // asking again during the backoff changes nothing
			_, _, err = h.DataStore(context.Background(), "fake")
			expectReason(t, err, ReasonRestarting, "exited")
			pe, _ := AsError(err)
			next := clk.Now().Add(want)
			if pe.RetryAfter != want || pe.Failures != i+1 || !pe.NextTry.Equal(next) {
				t.Fatalf("crash %d: RetryAfter=%s Failures=%d NextTry=%s, want %s, %d, %s", i+1, pe.RetryAfter, pe.Failures, pe.NextTry, want, i+1, next)
			}
			plural := map[bool]string{true: "failure", false: "failures"}[i == 0]
			mention := fmt.Sprintf("(%d consecutive %s; next start in %s, at %s)", i+1, plural, want, next.Format(time.RFC3339))
			if !strings.Contains(err.Error(), mention) {
				t.Fatalf("the error must say how many failures and when the next start is (%q): %v", mention, err)
			}
		}
		clk.Add(want)
	}

	c, _, err := h.DataStore(context.Background(), "fake")
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour) // a stable run
	killAndWait(t, c)
	_, _, err = h.DataStore(context.Background(), "fake")
	if pe, ok := AsError(err); !ok || pe.RetryAfter != time.Second || pe.Failures != 1 {
		t.Fatalf("after a stable run the backoff must start again from 1s: %v", err)
	}
}

// Failed starts back off exponentially as well, and say so.
func TestFailedStartsBackOffExponentially(t *testing.T) {
	clk := newClock()
	h := New([]settings.Plugin{entry("/nonexistent/kamaji-datastore-x", strings.Repeat("0", 64))}, Options{Now: clk.Now, ProbeInterval: -1})
	defer h.Close()
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		_, _, err := h.DataStore(context.Background(), "fake")
		expectReason(t, err, ReasonBinaryMissing, fmt.Sprintf("%d consecutive", i+1))
		if pe, _ := AsError(err); pe.RetryAfter != want {
			t.Fatalf("failure %d: RetryAfter=%s, want %s", i+1, pe.RetryAfter, want)
		}
		clk.Add(want)
	}
}

// One plugin's slow start delays neither the start nor the use of another; a caller waiting for
// the slow start gives up at its own deadline, and the start goes on for everyone else.
func TestSlowStartBlocksNoOtherPluginNorACallerPastItsDeadline(t *testing.T) {
	path, sha := testPlugin(t)
	gate := filepath.Join(t.TempDir(), "gate")
	slow := faultPlugin(t, settings.KindDataStore, "slow", "-wait-for", gate)
	h := New([]settings.Plugin{slow, entry(path, sha)}, Options{StartTimeout: time.Minute, ProbeInterval: -1})
	t.Cleanup(h.Close)
	openGate := func() {
		if err := os.WriteFile(gate, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(openGate) // before Close, which waits for the start

	type result struct {
		c   pluginClient
		err error
	}
	waiters := make(chan result, 3)
	for range cap(waiters) {
		go func() {
			c, _, err := h.DataStore(context.Background(), "slow")
			waiters <- result{c, err}
		}()
	}
	poll(t, 10*time.Second, "the slow plugin is starting", func() bool { return starting(h, "slow") })

	// Another plugin starts, and is then handed out, while the slow start goes on.
	first, _, err := h.DataStore(context.Background(), "fake")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	again, _, err := h.DataStore(ctx, "fake")
	cancel()
	if err != nil || again != first {
		t.Fatalf("the running plugin must be handed out: %v", err)
	}
	if !starting(h, "slow") {
		t.Fatal("the other plugin's lookups must not have waited for the slow start")
	}

	// A caller with a 100 ms deadline gives up waiting for the slow start, clearly.
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, _, err = h.DataStore(ctx, "slow")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the caller's deadline, got %v", err)
	}
	expectReason(t, err, ReasonStarting, "still starting")
	if !starting(h, "slow") {
		t.Fatal("the start must go on after a caller gave up")
	}

	// Once the plugin answers, every waiter gets the one process started for all of them.
	openGate()
	var got pluginClient
	for range cap(waiters) {
		r := <-waiters
		if r.err != nil {
			t.Fatal(r.err)
		}
		if got != nil && r.c != got {
			t.Fatal("concurrent callers must share one start")
		}
		got = r.c
	}
	c, _, err := h.DataStore(context.Background(), "slow")
	if err != nil || pluginClient(c) != got {
		t.Fatalf("the started plugin must be handed out: %v", err)
	}
}

// A plugin that is alive but does not answer its Probe is killed by the probe loop and restarted
// on next use, the kill counting as a failure for the backoff.
func TestHungPluginIsKilledByTheProbeAndRestarted(t *testing.T) {
	path, sha := testPlugin(t)
	for name, tc := range map[string]struct {
		plugin settings.Plugin
		get    func(*Host) (pluginClient, error)
		hang   func(t *testing.T, pid int)
	}{
		"datastore whose Probe blocks": {
			plugin: faultPlugin(t, settings.KindDataStore, "hung", "-hang-probe"),
			get: func(h *Host) (pluginClient, error) {
				c, _, err := h.DataStore(context.Background(), "hung")
				return c, err
			},
		},
		"addon whose Probe blocks": {
			plugin: faultPlugin(t, settings.KindAddon, "hung", "-hang-probe"),
			get: func(h *Host) (pluginClient, error) {
				c, _, err := h.Addon(context.Background(), "hung")
				return c, err
			},
		},
		"stopped datastore process": {
			plugin: entry(path, sha),
			get: func(h *Host) (pluginClient, error) {
				c, _, err := h.DataStore(context.Background(), "fake")
				return c, err
			},
			hang: func(t *testing.T, pid int) {
				if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			h := New([]settings.Plugin{tc.plugin}, Options{Now: clk.Now, ProbeInterval: 50 * time.Millisecond, ProbeTimeout: 200 * time.Millisecond})
			defer h.Close()
			c, err := tc.get(h)
			if err != nil {
				t.Fatal(err)
			}
			pid := c.Pid()
			if tc.hang != nil {
				tc.hang(t, pid)
			}
			poll(t, 10*time.Second, "the probe loop kills the hung plugin", func() bool { return !alive(pid) })
			_, err = tc.get(h)
			expectReason(t, err, ReasonRestarting, "probe failed")
			if pe, _ := AsError(err); pe.Failures != 1 || pe.RetryAfter != time.Second {
				t.Fatalf("a hung plugin counts as a failure: %v", err)
			}
			clk.Add(time.Second)
			c2, err := tc.get(h)
			if err != nil {
				t.Fatalf("the next use after the backoff must restart it: %v", err)
			}
			if c2.Pid() == pid {
				t.Fatal("same process after the kill")
			}
		})
	}
}

// The clients the host hands out keep their per-call deadline: CallTimeout when the caller has
// none, the caller's own otherwise.
func TestEveryRPCKeepsItsDeadline(t *testing.T) {
	ds := faultPlugin(t, settings.KindDataStore, "hung", "-hang-probe")
	ad := faultPlugin(t, settings.KindAddon, "hung-addon", "-hang-probe")
	for name, tc := range map[string]struct {
		callTimeout time.Duration
		ctx         func() (context.Context, context.CancelFunc)
	}{
		"no deadline: CallTimeout": {200 * time.Millisecond, func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}},
		"the caller's deadline": {time.Hour, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}},
	} {
		t.Run(name, func(t *testing.T) {
			h := New([]settings.Plugin{ds, ad}, Options{CallTimeout: tc.callTimeout, ProbeInterval: -1})
			defer h.Close()
			d, _, err := h.DataStore(context.Background(), "hung")
			if err != nil {
				t.Fatal(err)
			}
			a, _, err := h.Addon(context.Background(), "hung-addon")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := tc.ctx()
			defer cancel()
			if _, err := d.Probe(ctx); err == nil || !strings.Contains(err.Error(), "DeadlineExceeded") {
				t.Fatalf("datastore Probe: want DeadlineExceeded, got %v", err)
			}
			if _, err := a.Probe(ctx); err == nil || !strings.Contains(err.Error(), "DeadlineExceeded") {
				t.Fatalf("addon Probe: want DeadlineExceeded, got %v", err)
			}
		})
	}
}

// Close stops the probe loops and every plugin process, including one still starting, and the
// host starts nothing afterwards.
func TestCloseStopsProbeLoopsAndProcesses(t *testing.T) {
	path, sha := testPlugin(t)
	dir := t.TempDir()
	gate, pidFile := filepath.Join(dir, "gate"), filepath.Join(dir, "pid")
	slow := faultPlugin(t, settings.KindDataStore, "slow", "-wait-for", gate, "-pid-file", pidFile)
	h := New([]settings.Plugin{entry(path, sha), addonEntry(path, sha), slow}, Options{StartTimeout: time.Minute, ProbeInterval: 20 * time.Millisecond})
	d, _, err := h.DataStore(context.Background(), "fake")
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := h.Addon(context.Background(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	if n := h.probeLoops.Load(); n != 2 {
		t.Fatalf("%d probe loops for 2 running plugins", n)
	}
	slowErr := make(chan error, 1)
	go func() {
		_, _, err := h.DataStore(context.Background(), "slow")
		slowErr <- err
	}()
	var slowPid int
	poll(t, 10*time.Second, "the slow plugin's process runs", func() bool {
		b, _ := os.ReadFile(pidFile)
		slowPid, _ = strconv.Atoi(string(b))
		return slowPid > 0
	})

	closed := make(chan struct{})
	go func() {
		h.Close()
		close(closed)
	}()
	poll(t, 10*time.Second, "Close has begun", h.closed.Load)
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(time.Minute):
		t.Fatal("Close did not return")
	}
	if n := h.probeLoops.Load(); n != 0 {
		t.Fatalf("%d probe loops left after Close", n)
	}
	for _, pid := range []int{d.Pid(), a.Pid(), slowPid} {
		poll(t, 10*time.Second, fmt.Sprintf("plugin %d is gone", pid), func() bool { return !alive(pid) })
	}
	expectReason(t, <-slowErr, ReasonStopped, "stopped")
	_, _, err = h.DataStore(context.Background(), "fake")
	expectReason(t, err, ReasonStopped, "stopped")
}

// The backoff doubles from MinBackoff and stays at MaxBackoff, without overflowing.
func TestBackoffIsCapped(t *testing.T) {
	h := New(nil, Options{})
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 9: 256 * time.Second, 10: 5 * time.Minute, 1000: 5 * time.Minute} {
		if got := h.backoff(n); got != want {
			t.Errorf("backoff(%d) = %s, want %s", n, got, want)
		}
	}
}
