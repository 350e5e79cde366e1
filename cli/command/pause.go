package command

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"

	"github.com/openhcp/kamaji/cli/status"
)

func (a *app) pauseCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pause NAME",
		Short: "Stop the manager from reconciling a tenant (" + kamajiv1alpha1.PausedAnnotation + ")",
		Long: `Annotate the tenant with ` + kamajiv1alpha1.PausedAnnotation + `: the manager stops reconciling it
(its Deployment, Secrets, Service and status are left as they are) until resume. The tenant
keeps running. Useful to debug or edit its objects by hand.

The pause holds from the moment the annotation is written (a pass already running finishes):
there is nothing further to wait for.`,
		Example: `  # Leave a tenant alone while you look at its Deployment
  kubectl kamaji pause tenant-00 -n team-a
  kubectl kamaji resume tenant-00 -n team-a`,
		Args:              nameArg,
		ValidArgsFunction: a.completeTenants,
		RunE: func(cmd *cobra.Command, args []string) error {
			tcp, err := a.target(cmd, args)
			if err != nil {
				return err
			}
			if status.Paused(tcp) {
				fmt.Fprintf(a.streams.Out, "%s is already paused.\n", tcp.Name)
				return nil
			}
			if _, err := a.patchTCP(ctx(cmd), tcp, func(*kamajiv1alpha1.TenantControlPlane) (map[string]any, error) {
				return annotations(map[string]any{kamajiv1alpha1.PausedAnnotation: "true"}), nil
			}); err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "%s is paused: the manager leaves it as it is until `kubectl kamaji resume %s -n %s`.\n", tcp.Name, tcp.Name, tcp.Namespace)
			return nil
		},
	}
	return cmd
}

func (a *app) resumeCommand() *cobra.Command {
	w := waitFlags{}
	cmd := &cobra.Command{
		Use:   "resume NAME",
		Short: "Let the manager reconcile a paused tenant again",
		Long: `Remove ` + kamajiv1alpha1.PausedAnnotation + ` from the tenant: the manager reconciles it again and
applies whatever changed meanwhile.

Waits until the tenant's status describes its current spec and it is Ready (or Sleeping, when
scaled to zero).`,
		Example:           `  kubectl kamaji resume tenant-00 -n team-a`,
		Args:              nameArg,
		ValidArgsFunction: a.completeTenants,
		RunE: func(cmd *cobra.Command, args []string) error {
			tcp, err := a.target(cmd, args)
			if err != nil {
				return err
			}
			if !status.Paused(tcp) {
				fmt.Fprintf(a.streams.Out, "%s is not paused.\n", tcp.Name)
				return nil
			}
			tcp, err = a.patchTCP(ctx(cmd), tcp, func(*kamajiv1alpha1.TenantControlPlane) (map[string]any, error) {
				return annotations(map[string]any{kamajiv1alpha1.PausedAnnotation: nil}), nil
			})
			if err != nil {
				return err
			}
			if !w.wait {
				fmt.Fprintf(a.streams.Out, "%s resumed.\n", tcp.Name)
				return nil
			}
			tcp, err = a.waitTCP(ctx(cmd), tcp, tcp.Name+" to be reconciled", w, func(_ context.Context, t *kamajiv1alpha1.TenantControlPlane) (bool, string, error) {
				return status.Settled(t), "", nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "%s resumed: %s.\n", tcp.Name, status.State(tcp))
			return nil
		},
	}
	w.add(cmd)
	return cmd
}
