// Package transport is the go-plugin glue shared by the datastore and addon contracts: the
// handshake, starting a pinned plugin binary with AutoMTLS, serving, deadlines and the mapping
// between Go errors and gRPC status codes.
package transport

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/openhcp/kamaji/sdk"
)

// The magic cookie is not a security feature: it only keeps a user who runs a plugin binary by
// hand from staring at a silent process. Changing it breaks every plugin, so it never changes.
const (
	MagicCookieKey   = "KAMAJI_PLUGIN_MAGIC_COOKIE"
	MagicCookieValue = "d2f1c1a6-5b0e-4c57-9a4e-6f3f2c7b8e90"
)

// MaxMessageSize bounds one gRPC message. Export chunks aim at 4 MiB but a single etcd value
// can be up to the server's request limit, so both sides allow well above that.
const MaxMessageSize = 64 << 20

// Handshake is the go-plugin handshake for a protocol version.
func Handshake(version uint) goplugin.HandshakeConfig {
	return goplugin.HandshakeConfig{
		ProtocolVersion:  version,
		MagicCookieKey:   MagicCookieKey,
		MagicCookieValue: MagicCookieValue,
	}
}

// Conn is a started plugin process and the dispensed contract client.
type Conn struct {
	Client *goplugin.Client
	Raw    any
	Path   string
}

// Start launches the plugin described by cfg, checks its checksum, negotiates the transport
// protocol version and dispenses the contract named kind ("datastore" or "addon").
func Start(cfg sdk.ClientConfig, kind string, p goplugin.Plugin) (*Conn, error) {
	cmd := cfg.Cmd
	if cmd == nil {
		if cfg.Path == "" {
			return nil, errors.New("plugin path is required")
		}
		cmd = exec.Command(cfg.Path, cfg.Args...)
		cmd.Env = append([]string(nil), cfg.Env...)
	}
	path := cmd.Path
	if cfg.SHA256 == "" {
		return nil, fmt.Errorf("plugin %s: sha256 is required", path)
	}
	want, err := hex.DecodeString(strings.TrimPrefix(cfg.SHA256, "sha256:"))
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("plugin %s: sha256 %q is not a hex-encoded SHA-256", path, cfg.SHA256)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Warn, Output: os.Stderr})
	}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  Handshake(sdk.ProtocolVersion),
		VersionedPlugins: map[int]goplugin.PluginSet{sdk.ProtocolVersion: {kind: p}},
		Cmd:              cmd,
		SkipHostEnv:      cfg.SkipHostEnv,
		SecureConfig:     &goplugin.SecureConfig{Checksum: want, Hash: sha256.New()},
		AutoMTLS:         true,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Managed:          true,
		StartTimeout:     orDefault(cfg.StartTimeout, sdk.DefaultStartTimeout),
		Logger:           logger,
		GRPCDialOptions: append([]grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize))}, cfg.DialOptions...),
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, explainStart(path, cfg.SHA256, err)
	}
	raw, err := rpc.Dispense(kind)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("plugin %s does not serve the %s contract: %w", path, kind, err)
	}
	return &Conn{Client: client, Raw: raw, Path: path}, nil
}

// explainStart turns go-plugin's terse start errors into ones an operator can act on.
func explainStart(path, want string, err error) error {
	switch {
	case errors.Is(err, goplugin.ErrChecksumsDoNotMatch):
		got, herr := sdk.FileSHA256(path)
		if herr != nil {
			got = "unreadable: " + herr.Error()
		}
		return fmt.Errorf("plugin %s: sha256 mismatch: configured %s, binary has %s: %w", path, want, got, err)
	case strings.Contains(err.Error(), "incompatible API version"):
		return fmt.Errorf("plugin %s: transport protocol version mismatch (this host speaks version %d): %w",
			path, sdk.ProtocolVersion, err)
	}
	return fmt.Errorf("start plugin %s: %w", path, err)
}

// ServeOptions tunes Serve.
type ServeOptions struct {
	// ProtocolVersion overrides sdk.ProtocolVersion; only tests serve another one.
	ProtocolVersion int
	Logger          hclog.Logger
}

// Serve runs the plugin server until the host closes it. It does not return normally when the
// process was not started by a host: go-plugin then prints a hint and exits.
func Serve(kind string, p goplugin.Plugin, opts ServeOptions) {
	version := opts.ProtocolVersion
	if version == 0 {
		version = sdk.ProtocolVersion
	}
	logger := opts.Logger
	if logger == nil {
		// JSON lines on stderr are parsed by the host and re-logged with their level.
		logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: os.Stderr, JSONFormat: true})
	}
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig:  Handshake(uint(version)),
		VersionedPlugins: map[int]goplugin.PluginSet{version: {kind: p}},
		Logger:           logger,
		GRPCServer: func(o []grpc.ServerOption) *grpc.Server {
			o = append(o, grpc.MaxRecvMsgSize(MaxMessageSize), grpc.MaxSendMsgSize(MaxMessageSize))
			return grpc.NewServer(o...)
		},
	})
}

// WithTimeout returns ctx unchanged when it already has a deadline, else one bounded by d: every
// call to a plugin must end, even when the caller forgot to say when.
func WithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// CallTimeout and StreamTimeout resolve the client deadlines of cfg.
func CallTimeout(cfg sdk.ClientConfig) time.Duration {
	return orDefault(cfg.CallTimeout, sdk.DefaultCallTimeout)
}

func StreamTimeout(cfg sdk.ClientConfig) time.Duration {
	return orDefault(cfg.StreamTimeout, sdk.DefaultStreamTimeout)
}

func StartTimeout(cfg sdk.ClientConfig) time.Duration {
	return orDefault(cfg.StartTimeout, sdk.DefaultStartTimeout)
}
