// Package command is kubectl-kamaji's command line: one file per verb, each a thin layer over
// the packages that do the work (status, output, kubeconfig, jointoken, certs, wait). It
// speaks only to the Kubernetes API of the admin cluster, through the user's kubeconfig as
// kubectl does, and, for join-command, to the tenant's API through the tenant's admin
// kubeconfig.
package command

import (
	"context"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// Version is the CLI's version, set by main.
var Version = "dev"

// Deps are what the commands use of the outside world; a nil field uses the real thing.
// Tests replace them with fakes.
type Deps struct {
	// Client returns the admin cluster client for the kubeconfig flags.
	Client func(*genericclioptions.ConfigFlags) (client.Client, error)
	// Tenant returns a client for a tenant cluster's core API from one of its kubeconfigs.
	Tenant func(kubeconfig []byte) (corev1client.CoreV1Interface, error)
	// Now is the clock.
	Now func() time.Time
	// Interval between two checks while waiting (one second when 0).
	Interval time.Duration
	// Terminal tells whether progress goes to a terminal (redrawn in place); detected on
	// stderr when nil.
	Terminal func() bool
}

// app holds what every verb shares: the kubeconfig flags, the streams and the dependencies.
type app struct {
	flags   *genericclioptions.ConfigFlags
	streams genericiooptions.IOStreams
	deps    Deps
	cl      client.Client
}

// Scheme knows the built-in kinds and ours.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = kamajiv1alpha1.AddToScheme(s)
	return s
}

// New returns the root command. Its errors are meant to be printed as one line.
func New(streams genericiooptions.IOStreams, deps Deps) *cobra.Command {
	a := &app{flags: genericclioptions.NewConfigFlags(true), streams: streams, deps: deps}
	root := &cobra.Command{
		Use:   "kubectl-kamaji",
		Short: "Operate Kamaji tenant control planes: list, kubeconfig, sleep, wake, pause, rotate, upgrade, join nodes",
		Long: `kubectl kamaji works with the TenantControlPlanes (tcp) and DataStores of the admin
cluster your kubeconfig points at, like kubectl: --kubeconfig, --context, -n and -A as usual.
It speaks to the Kubernetes API only (never to a datastore), so what you may do is what your
RBAC allows; a refusal names the verb and resource that was refused.

Verbs that change a tenant (sleep, wake, resume, rotate, upgrade, migrate) wait until the change is
done, with a progress line, and fail with the condition that says why when it does not
happen within --timeout; --wait=false returns as soon as the change is recorded.`,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl kamaji"},
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		Version:       Version,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	a.flags.AddFlags(root.PersistentFlags())
	root.AddCommand(
		a.listCommand(),
		a.describeCommand(),
		a.datastoresCommand(),
		a.kubeconfigCommand(),
		a.joinCommand(),
		a.sleepCommand(),
		a.wakeCommand(),
		a.pauseCommand(),
		a.resumeCommand(),
		a.rotateCommand(),
		a.upgradeCommand(),
		a.migrateCommand(),
		a.versionCommand(),
	)
	return root
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of kubectl kamaji",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			cmd.Println(Version)
		},
	}
}

// client is the admin cluster client, made once.
func (a *app) client() (client.Client, error) {
	if a.cl != nil {
		return a.cl, nil
	}
	mk := a.deps.Client
	if mk == nil {
		mk = defaultClient
	}
	c, err := mk(a.flags)
	if err != nil {
		return nil, explain(err)
	}
	a.cl = c
	return c, nil
}

func defaultClient(f *genericclioptions.ConfigFlags) (client.Client, error) {
	cfg, err := f.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "kubectl-kamaji/" + Version
	mapper, err := f.ToRESTMapper()
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: Scheme(), Mapper: mapper})
}

// tenant is a client for a tenant cluster's core API (only the core group is linked: the
// plugin stays smaller).
func (a *app) tenant(kubeconfig []byte) (corev1client.CoreV1Interface, error) {
	if a.deps.Tenant != nil {
		return a.deps.Tenant(kubeconfig)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "kubectl-kamaji/" + Version
	cfg.Timeout = 30 * time.Second
	return corev1client.NewForConfig(cfg)
}

// namespace is -n, else the current context's namespace, else "default".
func (a *app) namespace() (string, error) {
	ns, _, err := a.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", explain(err)
	}
	return ns, nil
}

func (a *app) now() time.Time {
	if a.deps.Now != nil {
		return a.deps.Now()
	}
	return time.Now()
}

func (a *app) terminal() bool {
	if a.deps.Terminal != nil {
		return a.deps.Terminal()
	}
	f, ok := a.streams.ErrOut.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// ctx is the command's context (cobra gives context.Background() when none was set).
func ctx(cmd *cobra.Command) context.Context {
	if c := cmd.Context(); c != nil {
		return c
	}
	return context.Background()
}
