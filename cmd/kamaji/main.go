// Command kamaji is the operator's single binary: `kamaji manager` runs the controllers and
// webhooks; other subcommands verify plugins and run the local plane.
package main

import (
	"fmt"
	"os"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newRootCommand().Execute(); err != nil {
		// One readable line, non-zero exit: the error already names the key or the cause.
		fmt.Fprintln(os.Stderr, "kamaji:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "kamaji",
		Short:         "Hosted Kubernetes control planes, Kamaji-compatible, with pluggable datastores and addons",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Only the manager logs through controller-runtime (it sets its own logger); the other
		// commands use its clients, which would otherwise print a "log.SetLogger(...) was never
		// called" stack after 30 s.
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			if cmd.Name() != "manager" {
				ctrllog.SetLogger(logr.Discard())
			}
		},
	}
	root.AddCommand(newManagerCommand(), newVersionCommand())
	root.AddCommand(newPluginCommand(), newLocalCommand())
	root.AddCommand(newBackupCommand(), newRestoreCommand())
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), version) },
	}
}
