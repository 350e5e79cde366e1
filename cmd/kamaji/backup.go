package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openhcp/kamaji/core/backup"
	"github.com/openhcp/kamaji/core/manager"
	"github.com/openhcp/kamaji/core/pluginhost"
)

// tenantOptions are what backup and restore share: where the admin cluster and the plugins are.
type tenantOptions struct {
	kubeconfig string
	config     string
	tenant     string
}

func (o *tenantOptions) bind(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "The admin cluster's kubeconfig (default: $KUBECONFIG, the in-cluster ServiceAccount, ~/.kube/config).")
	f.StringVar(&o.config, "config", "kamaji.yaml", "The manager's configuration file: its plugins list says which plugin serves each driver.")
	f.StringVar(&o.tenant, "tenant", "", "The TenantControlPlane, NAMESPACE/NAME (required).")
	_ = cmd.MarkFlagRequired("tenant")
}

// open connects to the admin cluster and prepares the plugins; close stops them.
func (o *tenantOptions) open() (backup.Tenants, client.ObjectKey, func(), error) {
	ns, name, ok := strings.Cut(o.tenant, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return backup.Tenants{}, client.ObjectKey{}, nil, fmt.Errorf("--tenant %q: want NAMESPACE/NAME", o.tenant)
	}
	var cfg *rest.Config
	var err error
	if o.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	} else {
		cfg, err = ctrl.GetConfig()
	}
	if err != nil {
		return backup.Tenants{}, client.ObjectKey{}, nil, fmt.Errorf("no admin cluster to talk to: %v", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		return backup.Tenants{}, client.ObjectKey{}, nil, err
	}
	plugins, err := readPlugins(o.config)
	if err != nil {
		return backup.Tenants{}, client.ObjectKey{}, nil, fmt.Errorf("config file %s: %v", o.config, err)
	}
	host := pluginhost.New(plugins, pluginhost.Options{})
	return backup.Tenants{Reader: c, Host: host}, client.ObjectKey{Namespace: ns, Name: name}, host.Close, nil
}

func newBackupCommand() *cobra.Command {
	var o tenantOptions
	var output string
	cmd := &cobra.Command{
		Use:   "backup --tenant NAMESPACE/NAME --output FILE",
		Short: "Write one tenant's datastore keys to an archive",
		Long: `Write one tenant's datastore keys to a portable, compressed, checksummed archive (see
docs/backup.md), through its DataStore's plugin, as the manager reads it: run it where the
manager runs (in its pod, or a Job with its ServiceAccount, configuration and plugins), so the
datastore credentials never leave the admin cluster. The tenant keeps running; the archive is
one consistent view where the driver has one (etcd: a single revision).`,
		Example: `  # In the manager's pod, the archive streamed to your machine:
  kubectl -n kamaji-system exec deploy/kamaji -- kamaji backup --config /etc/kamaji/kamaji.yaml --tenant default/tenant-00 --output - > tenant-00.kbk

  # To a file:
  kamaji backup --tenant default/tenant-00 --output /backups/tenant-00.kbk`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output == "" {
				return fmt.Errorf("--output: give a file, or - for stdout")
			}
			tenants, key, closePlugins, err := o.open()
			if err != nil {
				return err
			}
			defer closePlugins()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var w io.Writer = cmd.OutOrStdout()
			var tmp string
			if output != "-" {
				// Written aside and renamed, so a failed backup never leaves a file that looks whole.
				f, err := os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".*")
				if err != nil {
					return fmt.Errorf("--output: %v", err)
				}
				tmp = f.Name()
				defer os.Remove(tmp)
				defer f.Close()
				w = f
			}
			start := time.Now()
			h, d, err := tenants.BackupTo(ctx, key, w, "kamaji "+version)
			if err != nil {
				return err
			}
			size := ""
			if tmp != "" {
				if err := w.(*os.File).Sync(); err != nil {
					return err
				}
				if st, err := os.Stat(tmp); err == nil {
					size = fmt.Sprintf(", archive %d bytes", st.Size())
				}
				if err := os.Rename(tmp, output); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "backed up %s from DataStore %s (driver %s, Kubernetes %s): %s%s in %s\n",
				key, h.DataStore, h.Driver, h.KubernetesVersion, d, size, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	o.bind(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "", "Where to write the archive; - for stdout (required).")
	return cmd
}

func newRestoreCommand() *cobra.Command {
	var o tenantOptions
	var input string
	cmd := &cobra.Command{
		Use:   "restore --tenant NAMESPACE/NAME --input FILE",
		Short: "Write a tenant archive into a new tenant's empty slice",
		Long: `Write an archive made by 'kamaji backup' into a TenantControlPlane's slice, on any DataStore and
driver. The archive is checked whole first (its checksums), then the TenantControlPlane: its
control plane must not run (create it with spec.controlPlane.deployment.replicas: 0), its slice
must be empty, and its Kubernetes minor must be the archive's or later. After the keys are
written they are read back and compared; then scale the control plane up (kubectl kamaji wake).
Run it where the manager runs, like backup.`,
		Example: `  # From your machine into the manager's pod:
  kubectl -n kamaji-system exec -i deploy/kamaji -- kamaji restore --config /etc/kamaji/kamaji.yaml --tenant default/restored --input - < tenant-00.kbk`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if input == "" {
				return fmt.Errorf("--input: give a file, or - for stdin")
			}
			path := input
			if input == "-" {
				// The archive is read twice (checked whole, then written): keep stdin aside.
				f, err := os.CreateTemp("", "kamaji-restore-*.kbk")
				if err != nil {
					return err
				}
				defer os.Remove(f.Name())
				_, err = io.Copy(f, cmd.InOrStdin())
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return fmt.Errorf("reading stdin: %v", err)
				}
				path = f.Name()
			}
			// A damaged archive is refused before anything else.
			if _, _, err := backup.VerifyFile(path); err != nil {
				return err
			}
			tenants, key, closePlugins, err := o.open()
			if err != nil {
				return err
			}
			defer closePlugins()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			start := time.Now()
			h, d, err := tenants.RestoreFrom(ctx, key, path)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "restored %s/%s (backed up %s from DataStore %s) into %s: %s in %s; scale its control plane up to start it\n",
				h.Tenant.Namespace, h.Tenant.Name, h.Created.Format(time.RFC3339), h.DataStore, key, d, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	o.bind(cmd)
	cmd.Flags().StringVarP(&input, "input", "i", "", "The archive; - for stdin (required).")
	return cmd
}
