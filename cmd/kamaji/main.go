// Command kamaji is the operator's single binary: `kamaji manager` runs the controllers and
// webhooks; other subcommands verify plugins and run the local plane.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
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
