package sdk

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Default deadlines applied by clients when the caller's context has none.
const (
	DefaultStartTimeout  = 10 * time.Second
	DefaultCallTimeout   = 30 * time.Second
	DefaultStreamTimeout = 30 * time.Minute
)

// ClientConfig says how a host starts and talks to a plugin binary. It maps one to one to a
// plugin entry of kamaji.yaml (path, sha256, args, env).
type ClientConfig struct {
	// Path of the plugin binary. Ignored when Cmd is set.
	Path string
	Args []string
	// Env is added to the plugin's environment, "KEY=value".
	Env []string
	// SkipHostEnv starts the plugin without the host's environment.
	SkipHostEnv bool
	// Cmd, when set, is used instead of Path, Args and Env. It must not have been started.
	Cmd *exec.Cmd

	// SHA256 is the hex checksum the binary must have. Required: the host never runs a binary it
	// has not pinned.
	SHA256 string

	// Logger receives the plugin's log lines and go-plugin's. Default: Warn and above to stderr.
	Logger hclog.Logger

	// StartTimeout bounds the start and handshake. Default DefaultStartTimeout.
	StartTimeout time.Duration
	// CallTimeout is the deadline of a unary call whose context has none. Default DefaultCallTimeout.
	CallTimeout time.Duration
	// StreamTimeout is the deadline of a streaming call (Export, Import) whose context has none.
	// Default DefaultStreamTimeout.
	StreamTimeout time.Duration

	// DialOptions are added to the host's gRPC connection to the plugin, such as interceptors
	// that time or trace each call.
	DialOptions []grpc.DialOption
}

// FileSHA256 returns the hex sha256 of a file, as ClientConfig.SHA256 wants it.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// KillPlugins stops every plugin process started by this process. Call it (deferred) in the
// host's main so that a host exiting leaves no plugin behind.
func KillPlugins() { goplugin.CleanupClients() }
