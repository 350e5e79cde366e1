package command

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"

	"github.com/openhcp/kamaji/cli/output"
)

func (a *app) listCommand() *cobra.Command {
	var all bool
	var out, selector string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List tenant control planes with status, version, endpoint, DataStore and what is failing",
		Long: `List the TenantControlPlanes of the namespace (-n, else the context's), or of every
namespace with -A.

STATUS is the tenant's state (Provisioning, Ready, NotReady, Upgrading, Sleeping,
CertificateAuthorityRotating, WriteLimited...), with ",Paused" when the manager is told to leave
it alone. VERSION is the installed version, "installed->wanted" during an upgrade. MESSAGE
sums up the conditions that are False, in the order of the reconcile steps (what waits for
a control-plane replica after what says why there is none), as
"Condition=False Reason: message".

-o wide adds the replicas, the admin kubeconfig Secret and the tenant's datastore usage and
prints MESSAGE whole; -o json and -o yaml print the objects as a v1 List.`,
		Example: `  # Tenants of the current namespace
  kubectl kamaji list

  # Every tenant of the admin cluster, with replicas, kubeconfig Secret and usage
  kubectl kamaji list -A -o wide

  # The tenants that are not Ready, for a script
  kubectl kamaji list -A -o json | jq -r '.items[] | select(.status.kubernetesResources.version.status != "Ready") | .metadata.name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := output.ParseFormat(out)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var opts []client.ListOption
			ns := ""
			if !all {
				if ns, err = a.namespace(); err != nil {
					return err
				}
				opts = append(opts, client.InNamespace(ns))
			}
			if selector != "" {
				sel, err := labels.Parse(selector)
				if err != nil {
					return fmt.Errorf("--selector: %w", err)
				}
				opts = append(opts, client.MatchingLabelsSelector{Selector: sel})
			}
			list := &kamajiv1alpha1.TenantControlPlaneList{}
			if err := c.List(ctx(cmd), list, opts...); err != nil {
				return explain(err)
			}
			switch f {
			case output.JSON, output.YAML:
				return output.TenantObjects(a.streams.Out, f, list.Items)
			}
			if len(list.Items) == 0 {
				if all {
					fmt.Fprintln(a.streams.ErrOut, "No TenantControlPlanes found.")
				} else {
					fmt.Fprintf(a.streams.ErrOut, "No TenantControlPlanes found in namespace %s.\n", ns)
				}
				return nil
			}
			return output.Tenants(a.streams.Out, list.Items, output.TenantOptions{Wide: f == output.Wide, AllNamespaces: all, Now: a.now()})
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list the tenants of every namespace")
	cmd.Flags().StringVarP(&out, "output", "o", "", "output format: wide, json or yaml")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "label selector, as kubectl's (-l team=a)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"wide", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
