package command

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"

	"github.com/openhcp/kamaji/cli/output"
)

func (a *app) datastoresCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:     "datastores [NAME...]",
		Aliases: []string{"datastore", "ds"},
		Short:   "List DataStores with driver, plugin, tenants and usage",
		Long: `List the DataStores (cluster-scoped), or the ones named: the driver, whether it is Ready,
the plugin serving it (name@version, from status.plugin), how many tenants use it
(status.usedBy) and what they store (status.usage: bytes and keys, summed over its tenants, as
the driver last reported it; drivers without the USAGE capability report none). MESSAGE sums
up the False conditions (PluginReady, ConfigValid, Ready).

-o wide adds the endpoints, the plugin protocol, when the usage was reported and the tenants'
names; -o json and -o yaml print the objects.`,
		Example: `  kubectl kamaji datastores
  kubectl kamaji datastores default -o wide
  kubectl kamaji datastores -o yaml`,
		ValidArgsFunction: a.completeDataStores,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := output.ParseFormat(out)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var items []kamajiv1alpha1.DataStore
			if len(args) == 0 {
				list := &kamajiv1alpha1.DataStoreList{}
				if err := c.List(ctx(cmd), list); err != nil {
					return explain(err)
				}
				items = list.Items
			}
			for _, name := range args {
				ds := &kamajiv1alpha1.DataStore{}
				if err := c.Get(ctx(cmd), client.ObjectKey{Name: name}, ds); err != nil {
					if apierrors.IsNotFound(err) && !isNotServed(err) {
						return fmt.Errorf("DataStore %q not found (kubectl kamaji datastores lists them)", name)
					}
					return explain(err)
				}
				items = append(items, *ds)
			}
			switch f {
			case output.JSON, output.YAML:
				return output.DataStoreObjects(a.streams.Out, f, items)
			}
			if len(items) == 0 {
				fmt.Fprintln(a.streams.ErrOut, "No DataStores found.")
				return nil
			}
			return output.DataStores(a.streams.Out, items, output.DataStoreOptions{Wide: f == output.Wide, Now: a.now()})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "output format: wide, json or yaml")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"wide", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (a *app) completeDataStores(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	c, err := a.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	list := &kamajiv1alpha1.DataStoreList{}
	if err := c.List(ctx(cmd), list); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, d := range list.Items {
		if strings.HasPrefix(d.Name, toComplete) {
			names = append(names, d.Name)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
