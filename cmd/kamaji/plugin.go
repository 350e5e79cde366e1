package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/openhcp/kamaji/sdk/conformance"
)

func newPluginCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Work with plugins",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newPluginVerifyCommand(), newPluginInstallCommand())
	return cmd
}

// verifyOptions are the flags of `kamaji plugin verify`.
type verifyOptions struct {
	kind      string
	plugin    string
	config    string
	sha256    string
	timeout   time.Duration
	namespace string
}

func newPluginVerifyCommand() *cobra.Command {
	o := verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify --plugin PATH [--kind datastore --config FILE | --kind addon]",
		Short: "Run the SDK conformance checks against a datastore or addon plugin binary",
		Long: `Run the SDK conformance checks against a plugin binary and print one line per check
(PASS, FAIL or SKIP with the reason): a datastore plugin (--kind datastore, the default) against a
real datastore described by --config, or an addon plugin (--kind addon: every addon it serves is
rendered for a sample tenant and checked: objects, labels, images, parameters, refusals; no
config needed).

The plugin is started as the manager starts it (go-plugin handshake, AutoMTLS, checksum). The
manager always pins a plugin's sha256 in kamaji.yaml; verify is a developer tool, so --sha256
defaults to the checksum of the file itself. Test tenants are created under --namespace with
names unique to the run, and deleted at the end.

Every driver is verified against a real, running datastore: the plugin provisions, reads and
deletes test tenants on it. The config file describes that datastore, with keys that mirror a
DataStore:

  driver: etcd                    # required: a driver the plugin serves
  endpoints: ["127.0.0.1:2379"]   # required
  caCert: |                       # PEM inline,
    -----BEGIN CERTIFICATE-----
    ...
  caKeyFile: /path/ca.key         # or from a file with the ...File variant (not both)
  clientCertFile: root.crt        # relative paths are relative to the config file
  clientKeyFile: root.key
  username: root                  # basic auth, when the driver uses it
  password: secret                # or passwordFile (trailing newlines dropped)
  parameters: {sslmode: require}  # driver-specific
  name: verify                    # optional DataStore name (default plugin-verify)

caCert, caKey, clientCert, clientKey and password each take an inline value or a ...File path.
Unknown keys are an error.

The kit also reaches the tenants' data itself, with the connection the plugin returned, to
check isolation, usage, export/import and deletion. What it connects with depends on that
connection, not on the driver's name: an etcd connection (DIRECT_ETCD, whatever the driver is
called) is opened directly, with a client certificate the kit signs with caCert/caKey as the
manager would, so give the CA key. For a kine sidecar this command has no way in: the checks
that read a tenant's data are skipped, each with the reason (a Go test runs them with
sdk/conformance/kine.Backend).

Exit status: 0 when every check passed or was skipped, 1 when one failed or the input is unusable.`,
		Example: `  kamaji plugin verify --plugin ./bin/kamaji-datastore-etcd --config etcd.yaml
  kamaji plugin verify --plugin ./kamaji-datastore-example --config example-etcd.yaml
  kamaji plugin verify --kind addon --plugin ./bin/kamaji-addon-coredns`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPluginVerify(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.kind, "kind", "datastore", "Contract the plugin serves: datastore or addon.")
	f.StringVar(&o.plugin, "plugin", "", "Path of the plugin binary to verify (required).")
	f.StringVar(&o.config, "config", "", "YAML file describing the datastore to verify against (required with --kind datastore).")
	f.StringVar(&o.sha256, "sha256", "", "Expected sha256 of the plugin binary, hex; default: the file's own checksum.")
	f.DurationVar(&o.timeout, "timeout", 2*time.Minute, "Time limit of each check.")
	f.StringVar(&o.namespace, "namespace", "kamaji-conformance", "Namespace of the test tenants.")
	_ = cmd.MarkFlagRequired("plugin")
	return cmd
}

func runPluginVerify(cmd *cobra.Command, o verifyOptions) error {
	st, err := os.Stat(o.plugin)
	switch {
	case err != nil:
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("plugin %s: %v", o.plugin, err)
	case st.IsDir():
		return fmt.Errorf("plugin %s: is a directory, want the plugin binary", o.plugin)
	case st.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("plugin %s: not executable", o.plugin)
	}
	if o.sha256 != "" {
		o.sha256 = strings.ToLower(o.sha256)
		if b, err := hex.DecodeString(o.sha256); err != nil || len(b) != 32 {
			return fmt.Errorf("sha256: want 64 hex digits, got %q", o.sha256)
		}
	}
	if o.timeout <= 0 {
		return fmt.Errorf("timeout: must be positive, got %s", o.timeout)
	}
	if o.namespace == "" {
		return errors.New("namespace: must not be empty")
	}
	switch o.kind {
	case "addon":
		if o.config != "" {
			return errors.New("config: an addon plugin is verified without a datastore; drop --config")
		}
		return runAddonVerify(cmd, o)
	case "datastore":
		if o.config == "" {
			return errors.New(`config: required with --kind datastore (the datastore to verify against; see --help)`)
		}
	default:
		return fmt.Errorf("kind: want datastore or addon, got %q", o.kind)
	}
	ds, err := loadVerifyConfig(o.config)
	if err != nil {
		return err
	}

	cfg := conformance.Config{
		PluginPath:   o.plugin,
		PluginSHA256: o.sha256,
		DataStore:    ds,
		Namespace:    o.namespace,
		Timeout:      o.timeout,
	}
	// No Backend: the kit picks conformance.EtcdBackend when the plugin answers with an etcd
	// connection, whatever the driver's name; with a kine sidecar it skips the checks that read
	// a tenant's data, each with the reason.

	// Ctrl-C stops the checks; Verify still deletes the tenants it created.
	parent := cmd.Context()
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := conformance.Verify(ctx, cfg)
	if err != nil {
		return err
	}
	if err := report.Print(cmd.OutOrStdout()); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return errors.New("interrupted; the test tenants created so far were deleted")
	}
	if failed := report.Count(conformance.Fail); failed > 0 {
		return fmt.Errorf("%d of %d checks failed", failed, len(report.Results))
	}
	return nil
}

// runAddonVerify runs the addon conformance kit against the plugin binary.
func runAddonVerify(cmd *cobra.Command, o verifyOptions) error {
	parent := cmd.Context()
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := conformance.VerifyAddon(ctx, conformance.AddonConfig{PluginPath: o.plugin, PluginSHA256: o.sha256, Timeout: o.timeout})
	if err != nil {
		return err
	}
	if err := report.Print(cmd.OutOrStdout()); err != nil {
		return err
	}
	if failed := report.Count(conformance.Fail); failed > 0 {
		return fmt.Errorf("%d of %d checks failed", failed, len(report.Results))
	}
	return nil
}
