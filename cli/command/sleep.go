package command

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/sleep"

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
` + SleepReplicasAnnotation + `, for wake. A tenant asleep on its own
(` + kamajiv1alpha1.SleepAfterAnnotation + `) is scaled to zero the same way, so that it stays
asleep whatever connects to it.

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

A tenant asleep on its own (` + kamajiv1alpha1.SleepAfterAnnotation + `, its Sleeping condition
True) still has its replicas in its spec: wake renews its activity Lease instead, as a
connection to its endpoint would, and refuses --replicas.

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
			if why := idleSleep(tcp); why != "" && status.Replicas(tcp) > 0 {
				// Asleep on its own: the spec already has its replicas; what wakes it is activity.
				if cmd.Flags().Changed("replicas") {
					return fmt.Errorf("TenantControlPlane %s/%s sleeps on its own (%s): its replicas are its spec's (%s); wake it without --replicas",
						tcp.Namespace, tcp.Name, kamajiv1alpha1.SleepAfterAnnotation, plural(status.Replicas(tcp)))
				}
				if err := refusePaused(tcp, w, "wake"); err != nil {
					return err
				}
				if err := a.renewActivity(ctx(cmd), tcp); err != nil {
					return err
				}
				fmt.Fprintf(a.streams.ErrOut, "Waking %s (%s; its activity Lease is renewed).\n", tcp.Name, why)
			} else if n := status.Replicas(tcp); n > 0 {
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

// fieldManager owns what the CLI server-side applies; its merge patches get the same name from
// its user agent.
const fieldManager = "kubectl-kamaji"

// idleSleep says how a TCP sleeps on its own (kamaji.clastix.io/sleep-after): asleep after
// idle time, or already waking; "" when it does not.
func idleSleep(tcp *kamajiv1alpha1.TenantControlPlane) string {
	c := status.Condition(tcp, kamajiv1alpha1.ConditionSleeping)
	switch {
	case c == nil:
		return ""
	case c.Status == metav1.ConditionTrue:
		return "asleep after idle time"
	case c.Reason == sleep.ReasonWaking:
		return "already waking from idle sleep"
	}
	return ""
}

// renewActivity wakes a TCP asleep on its own as a connection to it does: its activity Lease,
// the one the manager writes, renewed after the TCP fell asleep.
func (a *app) renewActivity(ctx context.Context, tcp *kamajiv1alpha1.TenantControlPlane) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	at := a.now()
	// A local clock behind the cluster's would renew before the fall asleep, which wakes nothing.
	if cond := status.Condition(tcp, kamajiv1alpha1.ConditionSleeping); cond != nil && !at.After(cond.LastTransitionTime.Time) {
		at = cond.LastTransitionTime.Add(time.Second)
	}
	if err := apply.ApplyAs(ctx, c, sleep.ActivityLease(tcp, at), fieldManager); err != nil {
		return fmt.Errorf("renewing the activity Lease %s/%s of %s: %w", tcp.Namespace, sleep.LeaseName(tcp.Name), tcp.Name, explain(err))
	}
	return nil
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
