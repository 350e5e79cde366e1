package command

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"

	"github.com/openhcp/kamaji/cli/status"
)

func (a *app) migrateCommand() *cobra.Command {
	w := waitFlags{}
	var to string
	cmd := &cobra.Command{
		Use:   "migrate NAME --to DATASTORE",
		Short: "Move a tenant's data to another DataStore (any driver to any driver)",
		Long: `Set the tenant's spec.dataStore: the operator freezes writes in the tenant (except kube-system and
kube-node-lease), streams its keys into the target DataStore, verifies key count and checksum,
switches the control plane there, lifts the freeze and deprovisions the source. A failure or the
deadline (annotation kamaji.clastix.io/migration-timeout, default 5m) rolls back to the source
with nothing lost. The command waits with the phase as progress and fails with the reason of a
rollback. See docs/migration.md.`,
		Example: `  kubectl kamaji migrate tenant-00 -n team-a --to postgresql

  # Start it and return at once
  kubectl kamaji migrate tenant-00 --to etcd-2 --wait=false`,
		Args:              nameArg,
		ValidArgsFunction: a.completeTenants,
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return fmt.Errorf("--to DATASTORE is required (kubectl kamaji datastores lists them)")
			}
			tcp, err := a.target(cmd, args)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.Get(ctx(cmd), client.ObjectKey{Name: to}, &kamajiv1alpha1.DataStore{}); err != nil {
				if apierrors.IsNotFound(err) {
					return fmt.Errorf("DataStore %q not found (kubectl kamaji datastores lists them)", to)
				}
				return explain(err)
			}
			from := tcp.Status.Storage.DataStoreName
			if m := tcp.Status.Storage.Migration; m != nil && m.Phase != kamajiv1alpha1.MigrationFailed {
				return fmt.Errorf("%s is already migrating from DataStore %s to %s (phase %s): wait for it to end", tcp.Name, m.Source, m.Target, m.Phase)
			}
			if from == to && tcp.Spec.DataStore == to {
				fmt.Fprintf(a.streams.Out, "%s already runs on DataStore %s.\n", tcp.Name, to)
				return nil
			}
			if err := refusePaused(tcp, w, "migrate"); err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "%s: migrating from DataStore %s to %s.\n", tcp.Name, orDash(from), to)
			tcp, err = a.patchTCP(ctx(cmd), tcp, func(*kamajiv1alpha1.TenantControlPlane) (map[string]any, error) {
				return map[string]any{"spec": map[string]any{"dataStore": to}}, nil
			})
			if err != nil {
				return err
			}
			if !w.wait {
				fmt.Fprintf(a.streams.Out, "%s: spec.dataStore set to %s; the migration runs.\n", tcp.Name, to)
				return nil
			}
			tcp, err = a.waitTCP(ctx(cmd), tcp, tcp.Name+" to move to DataStore "+to, w, migrated(to))
			if err != nil {
				return err
			}
			msg := ""
			if c := meta.FindStatusCondition(tcp.Status.Conditions, kamajiv1alpha1.ConditionDataStoreReady); c != nil {
				msg = ": " + c.Message
			}
			fmt.Fprintf(a.streams.Out, "%s runs on DataStore %s%s\n", tcp.Name, to, msg)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the DataStore to move the tenant to")
	w.add(cmd)
	return cmd
}

// migrated is done once the data is on the target and the migration record is gone; a
// rollback (phase Failed) is an error carrying its reason.
func migrated(to string) func(context.Context, *kamajiv1alpha1.TenantControlPlane) (bool, string, error) {
	return func(_ context.Context, t *kamajiv1alpha1.TenantControlPlane) (bool, string, error) {
		m := t.Status.Storage.Migration
		switch {
		case t.Spec.DataStore != to:
			return false, "", fmt.Errorf("spec.dataStore of %s changed to %s meanwhile", t.Name, t.Spec.DataStore)
		case m != nil && m.Phase == kamajiv1alpha1.MigrationFailed && m.Target == to:
			return false, "", fmt.Errorf("the migration of %s to DataStore %s failed and was rolled back: %s", t.Name, to, m.Message)
		case m != nil:
			return false, "phase " + string(m.Phase), nil
		}
		return status.Observed(t) && t.Status.Storage.DataStoreName == to && status.Serving(t), "on " + orDash(t.Status.Storage.DataStoreName), nil
	}
}
