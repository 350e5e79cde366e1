package pluginhost

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
)

// Reasons a plugin cannot serve; they become DataStore (or TCP) condition reasons as they are.
const (
	ReasonNotConfigured    = "PluginNotConfigured"
	ReasonBinaryMissing    = "PluginBinaryMissing"
	ReasonChecksumMismatch = "PluginChecksumMismatch"
	ReasonProtocolMismatch = "PluginProtocolUnsupported"
	ReasonHandshakeFailed  = "PluginHandshakeFailed"
	ReasonDriverMismatch   = "PluginDriverMismatch"
	ReasonAddonMismatch    = "PluginAddonMismatch"
	ReasonRestarting       = "PluginRestarting"
	ReasonNotReady         = "PluginNotReady"
	// ReasonStarting: the caller's context ended while the plugin was still starting; the start
	// goes on for the next caller.
	ReasonStarting = "PluginStarting"
	// ReasonStopped: the host was closed (the manager is stopping).
	ReasonStopped = "PluginHostStopped"
)

// Error is a plugin that cannot serve now, with a machine-readable reason and, when the host is
// backing off, how long until it tries again.
type Error struct {
	Plugin     string
	Reason     string
	Err        error
	RetryAfter time.Duration
	// Failures is how many times in a row the plugin failed (failed to start, exited, failed a
	// probe) and NextTry when the host starts it again, when it is backing off.
	Failures int
	NextTry  time.Time
}

// Error names the plugin and the failure and, when the host is backing off, how many failures
// in a row and when it tries again, such as "plugin etcd: the plugin process exited (3
// consecutive failures; next start in 4s, at 2026-03-01T15:04:05Z)".
func (e *Error) Error() string {
	msg := e.Err.Error()
	if e.Plugin != "" {
		msg = fmt.Sprintf("plugin %s: %s", e.Plugin, msg)
	}
	if e.Failures > 0 && !e.NextTry.IsZero() {
		failures := "failures"
		if e.Failures == 1 {
			failures = "failure"
		}
		msg += fmt.Sprintf(" (%d consecutive %s; next start in %s, at %s)", e.Failures, failures,
			roundWait(e.RetryAfter), e.NextTry.UTC().Format(time.RFC3339))
	}
	return msg
}

// roundWait rounds a wait to what a reader needs: seconds, or milliseconds below a second.
func roundWait(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

func (e *Error) Unwrap() error { return e.Err }

// AsError extracts a plugin Error from err.
func AsError(err error) (*Error, bool) {
	var pe *Error
	ok := errors.As(err, &pe)
	return pe, ok
}

// classify names why a plugin failed to start.
func classify(name, path string, err error) *Error {
	reason := ReasonHandshakeFailed
	msg := err.Error()
	switch {
	case errors.Is(err, os.ErrNotExist) || strings.Contains(msg, "no such file or directory"):
		reason = ReasonBinaryMissing
	case errors.Is(err, goplugin.ErrChecksumsDoNotMatch) || strings.Contains(msg, "sha256 mismatch"):
		reason = ReasonChecksumMismatch
	case strings.Contains(msg, "protocol version") || strings.Contains(msg, "Incompatible API version"):
		reason = ReasonProtocolMismatch
	}
	return &Error{Plugin: name, Reason: reason, Err: err}
}
