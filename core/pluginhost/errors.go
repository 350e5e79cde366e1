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
)

// Error is a plugin that cannot serve now, with a machine-readable reason and, when the host is
// backing off, how long until it tries again.
type Error struct {
	Plugin     string
	Reason     string
	Err        error
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Plugin == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("plugin %s: %v", e.Plugin, e.Err)
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
