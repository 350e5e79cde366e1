// Package pluginhost runs the datastore and addon plugins listed in kamaji.yaml: it starts a
// plugin on first use (verifying its pinned sha256 and negotiating the protocol through
// go-plugin with AutoMTLS), hands out the running client, restarts a plugin that died with
// exponential backoff, and kills every plugin when the manager exits.
package pluginhost

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/hashicorp/go-hclog"

	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/addon"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// Backoff bounds between restarts of a failing plugin.
const (
	minBackoff = time.Second
	maxBackoff = time.Minute
)

// Options tune the host.
type Options struct {
	// StartTimeout bounds a plugin's start and handshake (default 10s): a plugin that never
	// answers the handshake becomes an error within it, never a hang.
	StartTimeout time.Duration
	// CallTimeout is the deadline of each RPC whose context has none (default 30s).
	CallTimeout time.Duration
	Log         logr.Logger
	Now         func() time.Time
}

// Host owns the plugin processes.
type Host struct {
	opts     Options
	plugins  map[string]settings.Plugin
	byDriver map[string]string
	byAddon  map[string]string

	mu      sync.Mutex
	running map[string]*instance
}

// pluginClient is what the host needs of a running plugin of either contract.
type pluginClient interface {
	Exited() bool
	Close() error
	ProtocolVersion() int
}

type instance struct {
	client   pluginClient
	status   Status
	failures int
	retryAt  time.Time
	lastErr  *Error
	// release frees the OS thread that forked the running client (see startOnOwnThread).
	release chan struct{}
}

// New prepares a host for the configured plugins; nothing starts until first use.
func New(plugins []settings.Plugin, opts Options) *Host {
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 10 * time.Second
	}
	if opts.CallTimeout == 0 {
		opts.CallTimeout = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Host{opts: opts, plugins: map[string]settings.Plugin{}, byDriver: map[string]string{}, byAddon: map[string]string{}, running: map[string]*instance{}}
	for _, p := range plugins {
		h.plugins[p.Name] = p
		switch p.Kind {
		case settings.KindAddon:
			for _, a := range p.Addons {
				h.byAddon[a] = p.Name
			}
		default:
			for _, d := range p.Drivers {
				h.byDriver[d] = p.Name
			}
		}
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

// DataStore returns the running plugin serving driver, starting it if needed.
func (h *Host) DataStore(ctx context.Context, driver string) (*datastore.Client, Status, error) {
	name, ok := h.byDriver[driver]
	if !ok {
		return nil, Status{}, &Error{Reason: ReasonNotConfigured, Err: fmt.Errorf("no configured datastore plugin serves driver %q", driver)}
	}
	c, st, err := h.get(name, "datastore", h.startDataStore)
	if err != nil {
		return nil, Status{}, err
	}
	return c.(*datastore.Client), st, nil
}

// Addon returns the running plugin serving the addon (such as "coredns"), starting it if
// needed. The start, backoff and restart rules are those of the datastore plugins.
func (h *Host) Addon(ctx context.Context, addonName string) (*addon.Client, Status, error) {
	name, ok := h.byAddon[addonName]
	if !ok {
		return nil, Status{}, &Error{Reason: ReasonNotConfigured, Err: fmt.Errorf("no configured addon plugin serves addon %q (kamaji.yaml plugins with kind addon)", addonName)}
	}
	c, st, err := h.get(name, "addon", h.startAddon)
	if err != nil {
		return nil, Status{}, err
	}
	return c.(*addon.Client), st, nil
}

// get returns the running plugin called name, or starts it unless the host is backing off
// after a failure. A plugin that died since the last call counts as a failure.
func (h *Host) get(name, kind string, start func(settings.Plugin) (pluginClient, Status, *Error)) (pluginClient, Status, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	inst := h.running[name]
	if inst == nil {
		inst = &instance{}
		h.running[name] = inst
	}
	if inst.client != nil && !inst.client.Exited() {
		return inst.client, inst.status, nil
	}
	if inst.client != nil {
		// It died since the last call: count it as a failure and restart with backoff.
		h.opts.Log.Info(kind+" plugin exited; restarting", "plugin", name)
		close(inst.release)
		inst.client = nil
		inst.lastErr = &Error{Plugin: name, Reason: ReasonRestarting, Err: fmt.Errorf("the plugin process exited")}
		h.fail(inst)
	}
	if now := h.opts.Now(); now.Before(inst.retryAt) {
		e := *inst.lastErr
		e.RetryAfter = inst.retryAt.Sub(now)
		return nil, Status{}, &e
	}
	release := make(chan struct{})
	client, st, err := startOnOwnThread(start, h.plugins[name], release)
	if err != nil {
		inst.lastErr = err
		h.fail(inst)
		e := *err
		e.RetryAfter = inst.retryAt.Sub(h.opts.Now())
		return nil, Status{}, &e
	}
	inst.client, inst.status, inst.failures, inst.lastErr, inst.release = client, st, 0, nil, release
	return client, st, nil
}

// startOnOwnThread starts the plugin from an OS thread that stays locked and idle until
// release is closed (the plugin exited or was closed). The kernel's parent-death signal
// (Pdeathsig, see command) follows the thread that forked the child, not the manager process:
// forked from a caller's thread, the plugin would be killed whenever that thread ends, as it
// does when any goroutine exits while locked to it.
func startOnOwnThread(start func(settings.Plugin) (pluginClient, Status, *Error), p settings.Plugin, release <-chan struct{}) (pluginClient, Status, *Error) {
	type result struct {
		client pluginClient
		status Status
		err    *Error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		c, st, err := start(p)
		done <- result{c, st, err}
		if err == nil {
			<-release
		}
	}()
	r := <-done
	return r.client, r.status, r.err
}

func (h *Host) fail(inst *instance) {
	inst.failures++
	backoff := minBackoff << min(inst.failures-1, 6)
	inst.retryAt = h.opts.Now().Add(min(backoff, maxBackoff))
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

// Probe asks a running plugin whether it is healthy; a plugin whose probe fails is killed, so
// the next use restarts it.
func (h *Host) Probe(ctx context.Context, driver string) error {
	client, _, err := h.DataStore(ctx, driver)
	if err != nil {
		return err
	}
	res, err := client.Probe(ctx)
	if err != nil {
		_ = client.Close()
		return &Error{Plugin: h.byDriver[driver], Reason: ReasonRestarting, Err: fmt.Errorf("probe failed, restarting: %w", err)}
	}
	if !res.Ready {
		return &Error{Plugin: h.byDriver[driver], Reason: ReasonNotReady, Err: fmt.Errorf("not ready: %s", res.Message)}
	}
	return nil
}

// Close kills every plugin.
func (h *Host) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, inst := range h.running {
		if inst.client != nil {
			_ = inst.client.Close()
			close(inst.release)
		}
	}
	h.running = map[string]*instance{}
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
