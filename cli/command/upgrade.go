package command

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/version"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/kubeversion"

	"github.com/openhcp/kamaji/cli/status"
)

// PolicyText explains the version policy the operator's admission webhook enforces
// (core/kubeversion.Check, which upgrade applies before it writes anything).
func PolicyText() string {
	return fmt.Sprintf("Upgrade policy: a tenant moves one minor version at a time (v1.N to v1.N+1), counted from the version "+
		"it runs; the minor never goes down (the patch number is free); versions newer than v1.%d are refused, and versions "+
		"older than the tested ones (%s) are accepted with a warning. The control plane rolls blue/green: new pods start "+
		"before the old ones stop.", kubeversion.NewestMinor, kubeversion.Window())
}

// upgradeStep names the kind of an allowed move.
func upgradeStep(from, to string) string {
	f, err1 := version.ParseSemantic(from)
	t, err2 := version.ParseSemantic(to)
	switch {
	case err1 != nil || err2 != nil:
		return "allowed"
	case f.EqualTo(t):
		return "the same version"
	case f.Minor() == t.Minor() && t.LessThan(f):
		return "an older patch of the same minor: allowed"
	case f.Minor() == t.Minor():
		return "a patch release of the same minor: allowed"
	}
	return "the next minor: allowed"
}

func (a *app) upgradeCommand() *cobra.Command {
	w := waitFlags{}
	var to string
	cmd := &cobra.Command{
		Use:   "upgrade NAME --to VERSION",
		Short: "Upgrade a tenant's Kubernetes version, one minor at a time",
		Long: `Set the tenant's spec.kubernetes.version. Before changing anything the command explains the
policy the operator enforces and checks the target against it:

  - one minor version at a time, counted from the installed version (v1.36.x -> v1.37.y;
    v1.35 -> v1.37 must go through v1.36);
  - the minor never goes down (v1.37.x -> v1.36.y is refused); the patch number is free
    (v1.37.2 -> v1.37.1 is accepted);
  - no newer than v1.` + fmt.Sprint(kubeversion.NewestMinor) + `, the newest minor this operator knows; versions older than the
    tested ones (` + kubeversion.Window() + `) are accepted, with a warning.

A refused target changes nothing and the reason is printed. The control plane rolls blue/green
(Upgrading, then Ready with the new version); the command waits for it. A sleeping tenant is
upgraded when it runs: wake it first.`,
		Example: `  # Next minor
  kubectl kamaji upgrade tenant-00 -n team-a --to v1.37.2

  # Start it and return at once
  kubectl kamaji upgrade tenant-00 --to v1.37.2 --wait=false`,
		Args:              nameArg,
		ValidArgsFunction: a.completeTenants,
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return fmt.Errorf("--to VERSION is required (such as v1.37.2)")
			}
			if to[0] >= '0' && to[0] <= '9' {
				to = "v" + to // 1.37.2, as kubectl version prints it
			}
			tcp, err := a.target(cmd, args)
			if err != nil {
				return err
			}
			installed := tcp.Status.Kubernetes.Version.Version
			from := installed
			if from == "" {
				from = tcp.Spec.Kubernetes.Version
			}
			fmt.Fprintln(a.streams.Out, PolicyText())
			if err := kubeversion.Check(from, to); err != nil {
				return fmt.Errorf("cannot upgrade %s from %s to %s: %v", tcp.Name, from, to, err)
			}
			fmt.Fprintf(a.streams.Out, "%s: %s -> %s: %s.\n", tcp.Name, from, to, upgradeStep(from, to))
			if w := kubeversion.Warning(to); w != "" {
				fmt.Fprintln(a.streams.ErrOut, "Warning:", w)
			}
			if installed == to && tcp.Spec.Kubernetes.Version == to && status.Serving(tcp) {
				fmt.Fprintf(a.streams.Out, "%s already runs %s.\n", tcp.Name, to)
				return nil
			}
			if status.State(tcp) == kamajiv1alpha1.VersionSleeping || status.Replicas(tcp) == 0 {
				return fmt.Errorf("TenantControlPlane %s/%s is Sleeping: a version is installed by running it; `kubectl kamaji wake %s -n %s` first", tcp.Namespace, tcp.Name, tcp.Name, tcp.Namespace)
			}
			if err := refusePaused(tcp, w, "upgrade"); err != nil {
				return err
			}
			if tcp.Spec.Kubernetes.Version != to {
				tcp, err = a.patchTCP(ctx(cmd), tcp, func(cur *kamajiv1alpha1.TenantControlPlane) (map[string]any, error) {
					if v := cur.Status.Kubernetes.Version.Version; v != installed {
						return nil, fmt.Errorf("the installed version of %s changed meanwhile (%s, was %s): run the command again", cur.Name, v, installed)
					}
					return map[string]any{"spec": map[string]any{"kubernetes": map[string]any{"version": to}}}, nil
				})
				if err != nil {
					return err
				}
			}
			if !w.wait {
				fmt.Fprintf(a.streams.Out, "%s: version set to %s; the rollout runs.\n", tcp.Name, to)
				return nil
			}
			tcp, err = a.waitTCP(ctx(cmd), tcp, tcp.Name+" to run "+to, w, func(_ context.Context, t *kamajiv1alpha1.TenantControlPlane) (bool, string, error) {
				if t.Spec.Kubernetes.Version != to {
					return false, "", fmt.Errorf("spec.kubernetes.version of %s changed to %s meanwhile", t.Name, t.Spec.Kubernetes.Version)
				}
				return status.Observed(t) && status.Serving(t) && t.Status.Kubernetes.Version.Version == to,
					"installed " + orDash(t.Status.Kubernetes.Version.Version), nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "%s runs %s and is %s.\n", tcp.Name, to, status.State(tcp))
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the version to upgrade to, such as v1.37.2")
	w.add(cmd)
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
