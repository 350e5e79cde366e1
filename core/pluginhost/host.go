// Package pluginhost runs the datastore and addon plugins listed in kamaji.yaml: it starts a
// plugin on first use (verifying its pinned sha256 and negotiating the protocol through
// go-plugin with AutoMTLS), hands out the running client, probes it periodically, restarts a
// plugin that died or hung with exponential backoff, and kills every plugin when the manager
// exits.
package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/hashicorp/go-hclog"

	"github.com/openhcp/kamaji/core/metrics"
	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/addon"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// Defaults of Options.
const (
	defaultMinBackoff    = time.Second
	defaultMaxBackoff    = 5 * time.Minute
	defaultStableAfter   = 10 * time.Minute
	defaultProbeInterval = 30 * time.Second
	defaultProbeTimeout  = 5 * time.Second
)

// Options tune the host.
type Options struct {
	// StartTimeout bounds a plugin's start and handshake (default 10s): a plugin that never
	// answers the handshake becomes an error within it, never a hang.
	StartTimeout time.Duration
	// CallTimeout is the deadline of each RPC whose context has none (default 30s).
	CallTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before restarting a plugin that failed (default
	// 1s and 5m): it doubles with each consecutive failure (a failed start, an exit, a failed
	// probe), up to MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// StableAfter is how long a plugin must have run for its next failure to count as the first
	// again (default 10m).
	StableAfter time.Duration
	// ProbeInterval is how often each running plugin is probed (default 30s; negative: never);
	// a probe that fails or does not answer within ProbeTimeout (default 5s) kills the plugin,
	// which the next use restarts.
	ProbeInterval, ProbeTimeout time.Duration
	Log                         logr.Logger
	Now                         func() time.Time
}

// Host owns the plugin processes. Each plugin has its own lock, never held through a start: a
// running plugin is handed out whatever another plugin is doing, and one start serves every
// caller waiting for it (each gives up when its own context ends).
type Host struct {
	opts     Options
	plugins  map[string]*instance
	byDriver map[string]string
	byAddon  map[string]string

	closed atomic.Bool
	// work counts the starts in progress and the probe loops, for Close to wait on them.
	work       sync.WaitGroup
	probeLoops atomic.Int32
}

// pluginClient is what the host needs of a running plugin of either contract.
type pluginClient interface {
	Exited() bool
	Close() error
	ProtocolVersion() int
	Pid() int
}

// instance is one configured plugin, across its restarts.
type instance struct {
	plugin settings.Plugin
	kind   string
	start  func(settings.Plugin) (pluginClient, Status, *Error)

	mu sync.Mutex
	// cur is the running process, nil when there is none.
	cur *generation
	// starting is the start in progress, nil when there is none.
	starting *attempt
	// failures counts the consecutive failures; retryAt is when the next start may happen and
	// lastErr why the last failure happened.
	failures int
	retryAt  time.Time
	lastErr  *Error
}

// generation is one process of a plugin.
type generation struct {
	client    pluginClient
	status    Status
	startedAt time.Time
	// release frees the OS thread that forked the process (see launch).
	release chan struct{}
	// stop ends the probe loop.
	stop context.CancelFunc
	ctx  context.Context
}

// attempt is a start in progress; done is closed when client or err is set.
type attempt struct {
	begun  time.Time
	done   chan struct{}
	client pluginClient
	status Status
	err    *Error
}

// New prepares a host for the configured plugins; nothing starts until first use.
func New(plugins []settings.Plugin, opts Options) *Host {
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 10 * time.Second
	}
	if opts.CallTimeout == 0 {
		opts.CallTimeout = 30 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = defaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = defaultMaxBackoff
	}
	opts.MaxBackoff = max(opts.MaxBackoff, opts.MinBackoff)
	if opts.StableAfter <= 0 {
		opts.StableAfter = defaultStableAfter
	}
	if opts.ProbeInterval == 0 {
		opts.ProbeInterval = defaultProbeInterval
	}
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = defaultProbeTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Host{opts: opts, plugins: map[string]*instance{}, byDriver: map[string]string{}, byAddon: map[string]string{}}
	for _, p := range plugins {
		inst := &instance{plugin: p}
		switch p.Kind {
		case settings.KindAddon:
			inst.kind, inst.start = "addon", h.startAddon
			for _, a := range p.Addons {
				h.byAddon[a] = p.Name
			}
		default:
			inst.kind, inst.start = "datastore", h.startDataStore
			for _, d := range p.Drivers {
				h.byDriver[d] = p.Name
			}
		}
		h.plugins[p.Name] = inst
		metrics.PluginConfigured(p.Name)
	}
	return h
}

// Status is what the host knows of a running plugin, for the DataStore and TenantControlPlane
// status.
type Status struct {
	Name     string
	Version  string
	Protocol int
	// Capabilities an addon plugin announced when it started.
	Capabilities []addon.Capability
}

// DataStore returns the running plugin serving driver, starting it if needed. Waiting for a
// start ends with ctx (the start goes on for the next caller).
func (h *Host) DataStore(ctx context.Context, driver string) (*datastore.Client, Status, error) {
	name, ok := h.byDriver[driver]
	if !ok {
		return nil, Status{}, &Error{Reason: ReasonNotConfigured, Err: fmt.Errorf("no configured datastore plugin serves driver %q", driver)}
	}
	c, st, err := h.get(ctx, h.plugins[name])
	if err != nil {
		return nil, Status{}, err
	}
	return c.(*datastore.Client), st, nil
}

// Addon returns the running plugin serving the addon (such as "coredns"), starting it if
// needed. The start, backoff, probe and restart rules are those of the datastore plugins.
func (h *Host) Addon(ctx context.Context, addonName string) (*addon.Client, Status, error) {
	name, ok := h.byAddon[addonName]
	if !ok {
		return nil, Status{}, &Error{Reason: ReasonNotConfigured, Err: fmt.Errorf("no configured addon plugin serves addon %q (kamaji.yaml plugins with kind addon)", addonName)}
	}
	c, st, err := h.get(ctx, h.plugins[name])
	if err != nil {
		return nil, Status{}, err
	}
	return c.(*addon.Client), st, nil
}

// get returns the running plugin, or starts it unless the host is backing off after a failure.
// A plugin that died since the last call counts as a failure. Only one start of a plugin runs
// at a time; callers wait for it until their ctx ends.
func (h *Host) get(ctx context.Context, inst *instance) (pluginClient, Status, error) {
	name := inst.plugin.Name
	inst.mu.Lock()
	if h.closed.Load() {
		inst.mu.Unlock()
		return nil, Status{}, &Error{Plugin: name, Reason: ReasonStopped, Err: errors.New("the plugin host is stopped")}
	}
	if g := inst.cur; g != nil {
		if !g.client.Exited() {
			inst.mu.Unlock()
			return g.client, g.status, nil
		}
		h.opts.Log.Info(inst.kind+" plugin exited; restarting", "plugin", name)
		h.failed(inst, g, errors.New("the plugin process exited"))
		h.work.Add(1)
		go func() { // release the dead client's resources, off the caller's path
			defer h.work.Done()
			stop(g.client, closeGrace)
		}()
	}
	a := inst.starting
	if a == nil {
		if now := h.opts.Now(); now.Before(inst.retryAt) {
			e := h.backoffError(inst, now)
			inst.mu.Unlock()
			return nil, Status{}, e
		}
		a = &attempt{begun: h.opts.Now(), done: make(chan struct{})}
		inst.starting = a
		h.work.Add(1)
		go h.launch(inst, a)
	}
	inst.mu.Unlock()

	select {
	case <-a.done:
	case <-ctx.Done():
		select {
		case <-a.done: // finished meanwhile: take it
		default:
			return nil, Status{}, &Error{Plugin: name, Reason: ReasonStarting, RetryAfter: time.Second,
				Err: fmt.Errorf("still starting (for %s); gave up waiting: %w", h.opts.Now().Sub(a.begun).Round(time.Millisecond), ctx.Err())}
		}
	}
	if a.err != nil {
		e := *a.err
		e.RetryAfter = max(0, e.NextTry.Sub(h.opts.Now()))
		return nil, Status{}, &e
	}
	return a.client, a.status, nil
}

// launch runs a start from an OS thread that stays locked and idle until the process ends or is
// stopped. The kernel's parent-death signal (Pdeathsig, see command) follows the thread that
// forked the child, not the manager process: forked from a caller's thread, the plugin would be
// killed whenever that thread ends, as it does when any goroutine exits while locked to it.
func (h *Host) launch(inst *instance, a *attempt) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	client, st, err := inst.start(inst.plugin)
	release := h.started(inst, a, client, st, err)
	if err == nil && release == nil { // the host was closed meanwhile
		stop(client, closeGrace)
	}
	h.work.Done()
	if release != nil {
		<-release
	}
}

// started records the outcome of a start and wakes its waiters; it returns the channel that
// releases the forking thread when the plugin runs, nil when it does not (the start failed, or
// the host was closed meanwhile and the caller stops the new process).
func (h *Host) started(inst *instance, a *attempt, client pluginClient, st Status, err *Error) chan struct{} {
	inst.mu.Lock()
	defer close(a.done)
	defer inst.mu.Unlock()
	inst.starting = nil
	switch {
	case err != nil:
		metrics.PluginStartFailed(inst.plugin.Name, err.Reason)
		h.fail(inst, err)
		e := h.backoffError(inst, h.opts.Now())
		a.err = e
		return nil
	case h.closed.Load():
		a.err = &Error{Plugin: inst.plugin.Name, Reason: ReasonStopped, Err: errors.New("the plugin host is stopped")}
		return nil
	}
	ctx, stop := context.WithCancel(context.Background())
	g := &generation{client: client, status: st, startedAt: h.opts.Now(), release: make(chan struct{}), ctx: ctx, stop: stop}
	inst.cur = g
	a.client, a.status = client, st
	metrics.PluginStarted(inst.plugin.Name, inst.kind, st.Version, st.Protocol)
	if h.opts.ProbeInterval > 0 {
		h.work.Add(1)
		h.probeLoops.Add(1)
		go h.probeLoop(inst, g)
	}
	return g.release
}

// failed ends the running generation g after a crash, a failed probe or a kill, counting it as
// a failure; the caller holds inst.mu and kills the process if it still runs. A plugin that ran
// for StableAfter starts its count of failures afresh.
func (h *Host) failed(inst *instance, g *generation, cause error) {
	if h.opts.Now().Sub(g.startedAt) >= h.opts.StableAfter {
		inst.failures = 0
	}
	inst.cur = nil
	g.stop()
	close(g.release)
	metrics.PluginLost(inst.plugin.Name)
	h.fail(inst, &Error{Plugin: inst.plugin.Name, Reason: ReasonRestarting, Err: cause})
}

// fail counts a failure and sets when the next start may happen. The caller holds inst.mu.
func (h *Host) fail(inst *instance, err *Error) {
	inst.failures++
	inst.lastErr = err
	inst.retryAt = h.opts.Now().Add(h.backoff(inst.failures))
}

// backoff is the wait after n consecutive failures: MinBackoff doubled n-1 times, at most
// MaxBackoff.
func (h *Host) backoff(n int) time.Duration {
	d := h.opts.MinBackoff
	for i := 1; i < n && d < h.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, h.opts.MaxBackoff)
}

// backoffError is the last failure, with how many in a row and when the next start is. The
// caller holds inst.mu.
func (h *Host) backoffError(inst *instance, now time.Time) *Error {
	e := *inst.lastErr
	e.Failures, e.NextTry, e.RetryAfter = inst.failures, inst.retryAt, max(0, inst.retryAt.Sub(now))
	return &e
}

// kill stops generation g (if it still runs) and counts it as a failure.
func (h *Host) kill(inst *instance, g *generation, cause error) {
	inst.mu.Lock()
	if inst.cur != g {
		inst.mu.Unlock()
		return
	}
	h.failed(inst, g, cause)
	inst.mu.Unlock()
	terminate(g.client)
}

// terminate kills a plugin's process at once, then lets its client clean up: a hung process
// (even a stopped one) would not answer the graceful shutdown that Close starts with.
func terminate(c pluginClient) {
	if pid := c.Pid(); pid > 0 && !c.Exited() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = c.Close()
}

// probeLoop probes generation g every ProbeInterval until it ends: a probe that fails or does
// not answer within ProbeTimeout kills the process (a hung plugin), as does finding it exited.
func (h *Host) probeLoop(inst *instance, g *generation) {
	defer h.work.Done()
	defer h.probeLoops.Add(-1)
	t := time.NewTicker(h.opts.ProbeInterval)
	defer t.Stop()
	log := h.opts.Log.WithValues("plugin", inst.plugin.Name)
	ready := true
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
		}
		if g.client.Exited() {
			log.Info(inst.kind + " plugin exited; restarting on next use")
			h.kill(inst, g, errors.New("the plugin process exited"))
			return
		}
		ctx, cancel := context.WithTimeout(g.ctx, h.opts.ProbeTimeout)
		ok, msg, err := probe(ctx, g.client)
		cancel()
		if g.ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Info(inst.kind+" plugin failed its probe; killed, restarting on next use", "timeout", h.opts.ProbeTimeout, "error", err.Error())
			h.kill(inst, g, fmt.Errorf("probe failed (deadline %s), killed: %w", h.opts.ProbeTimeout, err))
			return
		}
		if ok != ready {
			log.Info(inst.kind+" plugin readiness changed", "ready", ok, "message", msg)
			ready = ok
		}
	}
}

// probe calls the Probe of either contract.
func probe(ctx context.Context, c pluginClient) (ready bool, message string, err error) {
	switch c := c.(type) {
	case *datastore.Client:
		r, err := c.Probe(ctx)
		return r.Ready, r.Message, err
	case *addon.Client:
		r, err := c.Probe(ctx)
		return r.Ready, r.Message, err
	}
	return true, "", nil
}

// command prepares the plugin's process: its binary must exist, and it dies with the manager.
func (h *Host) command(p settings.Plugin) (*exec.Cmd, *Error) {
	if _, err := os.Stat(p.Path); err != nil {
		return nil, &Error{Plugin: p.Name, Reason: ReasonBinaryMissing, Err: fmt.Errorf("binary %s: %w", p.Path, err)}
	}
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = os.Environ()
	for k, v := range p.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// The kernel kills the plugin when the manager dies, even by SIGKILL: no orphans.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd, nil
}

func (h *Host) clientConfig(p settings.Plugin, cmd *exec.Cmd) sdk.ClientConfig {
	return sdk.ClientConfig{
		Cmd:          cmd,
		SHA256:       p.SHA256,
		StartTimeout: h.opts.StartTimeout,
		CallTimeout:  h.opts.CallTimeout,
		DialOptions:  metrics.PluginDialOptions(p.Name),
		Logger:       hclog.New(&hclog.LoggerOptions{Name: "plugin." + p.Name, Level: hclog.Warn, Output: logWriter{h.opts.Log.WithName(p.Name)}}),
	}
}

func (h *Host) startDataStore(p settings.Plugin) (pluginClient, Status, *Error) {
	cmd, perr := h.command(p)
	if perr != nil {
		return nil, Status{}, perr
	}
	client, err := datastore.NewClient(h.clientConfig(p, cmd))
	if err != nil {
		return nil, Status{}, classify(p.Name, p.Path, err)
	}
	served := client.Info().Drivers
	for _, d := range p.Drivers {
		if !slices.Contains(served, d) {
			_ = client.Close()
			return nil, Status{}, &Error{Plugin: p.Name, Reason: ReasonDriverMismatch,
				Err: fmt.Errorf("kamaji.yaml lists driver %q but the plugin serves %v", d, served)}
		}
	}
	info := client.Info()
	h.opts.Log.Info("datastore plugin started", "plugin", p.Name, "version", info.VendorVersion, "protocol", client.ProtocolVersion())
	return client, Status{Name: info.Name, Version: info.VendorVersion, Protocol: client.ProtocolVersion()}, nil
}

func (h *Host) startAddon(p settings.Plugin) (pluginClient, Status, *Error) {
	cmd, perr := h.command(p)
	if perr != nil {
		return nil, Status{}, perr
	}
	client, err := addon.NewClient(h.clientConfig(p, cmd))
	if err != nil {
		return nil, Status{}, classify(p.Name, p.Path, err)
	}
	info := client.Info()
	for _, a := range p.Addons {
		if !slices.Contains(info.Addons, a) {
			_ = client.Close()
			return nil, Status{}, &Error{Plugin: p.Name, Reason: ReasonAddonMismatch,
				Err: fmt.Errorf("kamaji.yaml lists addon %q but the plugin serves %v", a, info.Addons)}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.StartTimeout)
	defer cancel()
	caps, err := client.Capabilities(ctx)
	if err != nil {
		_ = client.Close()
		return nil, Status{}, &Error{Plugin: p.Name, Reason: ReasonHandshakeFailed, Err: fmt.Errorf("GetCapabilities: %w", err)}
	}
	h.opts.Log.Info("addon plugin started", "plugin", p.Name, "version", info.VendorVersion, "protocol", client.ProtocolVersion(), "addons", info.Addons)
	return client, Status{Name: info.Name, Version: info.VendorVersion, Protocol: client.ProtocolVersion(), Capabilities: caps}, nil
}

// Probe asks a running plugin whether it is healthy; a plugin whose probe fails is killed (a
// failure for the backoff), so the next use restarts it.
func (h *Host) Probe(ctx context.Context, driver string) error {
	client, _, err := h.DataStore(ctx, driver)
	if err != nil {
		return err
	}
	res, err := client.Probe(ctx)
	if err != nil {
		name := h.byDriver[driver]
		inst := h.plugins[name]
		inst.mu.Lock()
		g := inst.cur
		inst.mu.Unlock()
		if g != nil && g.client == pluginClient(client) {
			h.kill(inst, g, fmt.Errorf("probe failed, killed: %w", err))
		}
		return &Error{Plugin: name, Reason: ReasonRestarting, Err: fmt.Errorf("probe failed, restarting: %w", err)}
	}
	if !res.Ready {
		return &Error{Plugin: h.byDriver[driver], Reason: ReasonNotReady, Err: fmt.Errorf("not ready: %s", res.Message)}
	}
	return nil
}

// Close stops the probe loops and kills every plugin, waiting for the starts in progress (each
// bounded by StartTimeout); the host starts nothing afterwards.
func (h *Host) Close() {
	h.closed.Store(true)
	var running []*generation
	for _, inst := range h.plugins {
		inst.mu.Lock()
		if g := inst.cur; g != nil {
			inst.cur = nil
			g.stop()
			close(g.release)
			running = append(running, g)
		}
		inst.mu.Unlock()
		metrics.PluginStopped(inst.plugin.Name)
	}
	var wg sync.WaitGroup
	for _, g := range running {
		wg.Go(func() { stop(g.client, closeGrace) })
	}
	wg.Wait()
	h.work.Wait()
}

// closeGrace is how long Close waits for a plugin to exit gracefully before killing it.
const closeGrace = 3 * time.Second

// stop closes a plugin gracefully, and kills it if it has not exited within grace: go-plugin's
// graceful close waits for a hung (or stopped) process forever.
func stop(c pluginClient, grace time.Duration) {
	pid := c.Pid()
	done := make(chan struct{})
	go func() {
		_ = c.Close()
		close(done)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		if pid > 0 && !c.Exited() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		<-done
	}
}

// logWriter forwards the plugin's log lines (and go-plugin's) to the manager's logger.
type logWriter struct{ log logr.Logger }

func (w logWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if line != "" {
			w.log.Info(line)
		}
	}
	return len(b), nil
}
