// Command kubectl-kamaji is the kubectl plugin for Kamaji tenant control planes: installed on
// the PATH (or with krew), it runs as `kubectl kamaji`.
package main

import (
	"fmt"
	"os"

	"github.com/go-logr/logr"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/openhcp/kamaji/cli/command"
	"github.com/openhcp/kamaji/cli/status"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// The client libraries log what the error will say anyway (client-go's discovery retries,
	// controller-runtime's complaint that no logger is set): errors are the one line below.
	ctrllog.SetLogger(logr.Discard())
	klog.SetLogger(logr.Discard())
	command.Version = version
	root := command.New(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}, command.Deps{})
	if err := root.Execute(); err != nil {
		// One readable line, non-zero exit.
		fmt.Fprintln(os.Stderr, "error:", status.OneLine(err.Error()))
		os.Exit(1)
	}
}
