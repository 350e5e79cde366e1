package command

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"

	"github.com/openhcp/kamaji/cli/status"
)

func (a *app) sleepCommand() *cobra.Command {
	w := waitFlags{}
	cmd := &cobra.Command{
		Use:   "sleep NAME",
		Short: "Scale a tenant's control plane to zero, remembering its replicas",
		Long: `Scale the tenant's control plane to zero replicas (spec.controlPlane.deployment.replicas,
what kubectl scale tcp changes): its apiserver stops, its data stays in the DataStore, and the
tenant shows Sleeping. The replicas it had are written in the same request to the annotation
` + SleepReplicasAnnotation + `, for wake.

Waits until the tenant is Sleeping.`,
		Example: `  # Put a tenant to sleep for the night
  kubectl kamaji sleep tenant-00 -n team-a

  # Record the change and return at once
  kubectl kamaji sleep tenant-00 --wait=false`,
		Args:              nameArg,
		ValidArgsFunction: a.completeTenants,
		RunE: func(cmd *cobra.Command, args []string) error {
			tcp, err := a.target(cmd, args)
			if err != nil {
				return err
			}
			replicas := status.Replicas(tcp)
			if replicas > 0 {
				if err := refusePaused(tcp, w, "scale"); err != nil {
					return err
				}
				tcp, err = a.patchTCP(ctx(cmd), tcp, func(cur *kamajiv1alpha1.TenantControlPlane) (map[string]any, error) {
					n := status.Replicas(cur)
					if n == 0 {
						return nil, fmt.Errorf("TenantControlPlane %s/%s was scaled to zero meanwhile", cur.Namespace, cur.Name)
					}
					p := annotations(map[string]any{SleepReplicasAnnotation: strconv.Itoa(int(n))})
					p["spec"] = map[string]any{"controlPlane": map[string]any{"deployment": map[string]any{"replicas": 0}}}
					return p, nil
				})
				if err != nil {
					return err
				}
			} else if status.State(tcp) == kamajiv1alpha1.VersionSleeping && status.Observed(tcp) {
				fmt.Fprintf(a.streams.Out, "%s is already Sleeping.\n", tcp.Name)
				return nil
			}
			if !w.wait {
				fmt.Fprintf(a.streams.Out, "%s scaled to zero (was %s).\n", tcp.Name, plural(replicas))
				return nil
			}
			if _, err := a.waitTCP(ctx(cmd), tcp, tcp.Name+" to be Sleeping", w, func(_ context.Context, t *kamajiv1alpha1.TenantControlPlane) (bool, string, error) {
				return status.Observed(t) && status.State(t) == kamajiv1alpha1.VersionSleeping, "", nil
			}); err != nil {
				return err
			}
			if replicas > 0 {
				fmt.Fprintf(a.streams.Out, "%s is Sleeping (it had %s: `kubectl kamaji wake %s -n %s` brings them back).\n", tcp.Name, plural(replicas), tcp.Name, tcp.Namespace)
			} else {
				fmt.Fprintf(a.streams.Out, "%s is Sleeping.\n", tcp.Name)
			}
			return nil
		},
	}
	w.add(cmd)
	return cmd
}

func (a *app) wakeCommand() *cobra.Command {
	w := waitFlags{}
	var replicas int32
	cmd := &cobra.Command{
		Use:   "wake NAME",
		Short: "Scale a sleeping tenant back to the replicas it had",
		Long: `Scale a sleeping tenant back up: to --replicas when given, else to the replicas sleep
recorded in ` + SleepReplicasAnnotation + `, else to the default (2). The
annotation is removed in the same request.

Waits until the tenant is Ready.`,
		Example: `  # Wake a tenant with the replicas it had
  kubectl kamaji wake tenant-00 -n team-a

  # Wake it with one replica
  kubectl kamaji wake tenant-00 --replicas 1`,
		Args:              nameArg,
		ValidArgsFunction: a.completeTenants,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("replicas") && replicas < 1 {
				return fmt.Errorf("--replicas must be at least 1 (sleep scales to zero)")
			}
			tcp, err := a.target(cmd, args)
			if err != nil {
				return err
			}
			if n := status.Replicas(tcp); n > 0 {
				if status.Serving(tcp) && status.Observed(tcp) {
					fmt.Fprintf(a.streams.Out, "%s is awake (%s, %s).\n", tcp.Name, plural(n), status.State(tcp))
					return nil
				}
			} else {
				if err := refusePaused(tcp, w, "scale"); err != nil {
					return err
				}
				var target int32
				var why string
				tcp, err = a.patchTCP(ctx(cmd), tcp, func(cur *kamajiv1alpha1.TenantControlPlane) (map[string]any, error) {
					n, from, werr := wakeReplicas(cur, replicas, cmd.Flags().Changed("replicas"))
					if werr != nil {
						return nil, werr
					}
					target, why = n, from
					p := annotations(map[string]any{SleepReplicasAnnotation: nil})
					p["spec"] = map[string]any{"controlPlane": map[string]any{"deployment": map[string]any{"replicas": target}}}
					return p, nil
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(a.streams.ErrOut, "Scaling %s to %s (%s).\n", tcp.Name, plural(target), why)
			}
			if !w.wait {
				fmt.Fprintf(a.streams.Out, "%s is waking up.\n", tcp.Name)
				return nil
			}
			tcp, err = a.waitTCP(ctx(cmd), tcp, tcp.Name+" to be Ready", w, func(_ context.Context, t *kamajiv1alpha1.TenantControlPlane) (bool, string, error) {
				return status.Observed(t) && status.Serving(t), "", nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "%s is %s (%s).\n", tcp.Name, status.State(tcp), plural(status.Replicas(tcp)))
			return nil
		},
	}
	cmd.Flags().Int32Var(&replicas, "replicas", 0, "replicas to wake up with (default: those sleep recorded, else 2)")
	w.add(cmd)
	return cmd
}

// wakeReplicas chooses the replicas to wake with and says where the number comes from.
func wakeReplicas(tcp *kamajiv1alpha1.TenantControlPlane, flag int32, flagSet bool) (int32, string, error) {
	if flagSet {
		return flag, "--replicas", nil
	}
	if v, ok := tcp.Annotations[SleepReplicasAnnotation]; ok {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 1 {
			return 0, "", fmt.Errorf("annotation %s=%q on %s/%s is not a replica count: pass --replicas", SleepReplicasAnnotation, v, tcp.Namespace, tcp.Name)
		}
		return int32(n), "as before sleep", nil
	}
	return status.DefaultReplicas, "no replicas recorded by sleep: the default", nil
}

// plural is "1 replica", "2 replicas".
func plural(n int32) string {
	if n == 1 {
		return "1 replica"
	}
	return fmt.Sprintf("%d replicas", n)
}
