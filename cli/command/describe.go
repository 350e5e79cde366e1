package command

import (
	"fmt"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"

	"github.com/openhcp/kamaji/cli/certs"
	"github.com/openhcp/kamaji/cli/output"
)

func (a *app) describeCommand() *cobra.Command {
	var events int
	cmd := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a tenant's status, conditions, certificates, datastore slice, addons and events",
		Long: `Show one tenant in detail:

  - its state, version, endpoint, replicas and admin kubeconfig Secret;
  - every condition, in the order of the reconcile steps, with reason, age and message;
  - every certificate of its PKI and kubeconfig Secrets, with its expiry ("soon" within 30
    days);
  - its datastore slice (DataStore, driver, schema, user, overrides, usage) and the DataStore's
    plugin and readiness;
  - its addons (requested in spec.addons, applied in the tenant);
  - the recent events about it.

A part you may not read (a Secret RBAC hides from you, say) is reported in its section; the
rest is still shown.`,
		Example: `  kubectl kamaji describe tenant-00 -n team-a

  # Without events
  kubectl kamaji describe tenant-00 --events 0`,
		Args:              nameArg,
		ValidArgsFunction: a.completeTenants,
		RunE: func(cmd *cobra.Command, args []string) error {
			tcp, err := a.target(cmd, args)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			d := output.Description{TCP: tcp, Now: a.now(), MaxEvents: events}

			if name := output.DataStoreOf(tcp); name != "" {
				ds := &kamajiv1alpha1.DataStore{}
				if err := c.Get(ctx(cmd), client.ObjectKey{Name: name}, ds); err != nil {
					if apierrors.IsNotFound(err) {
						d.DataStoreErr = fmt.Sprintf("DataStore %s not found", name)
					} else {
						d.DataStoreErr = explain(err).Error()
					}
				} else {
					d.DataStore = ds
				}
			}

			for _, src := range certs.Sources(tcp) {
				s := &corev1.Secret{}
				if err := c.Get(ctx(cmd), client.ObjectKey{Namespace: tcp.Namespace, Name: src.Name}, s); err != nil {
					if apierrors.IsNotFound(err) {
						d.CertErrors = append(d.CertErrors, fmt.Sprintf("Secret %s: not created yet", src.Name))
					} else {
						d.CertErrors = append(d.CertErrors, fmt.Sprintf("Secret %s: %v", src.Name, explain(err)))
					}
					continue
				}
				found, err := certs.FromSecret(s, src.Kubeconfig)
				d.Certs = append(d.Certs, found...)
				if err != nil {
					d.CertErrors = append(d.CertErrors, err.Error())
				}
			}

			if events > 0 {
				list := &corev1.EventList{}
				err := c.List(ctx(cmd), list, client.InNamespace(tcp.Namespace), client.MatchingFields{
					"involvedObject.kind": "TenantControlPlane",
					"involvedObject.name": tcp.Name,
				})
				if err != nil {
					d.EventsErr = explain(err).Error()
				}
				for _, e := range list.Items {
					// A TCP deleted and created again under the same name: only this one's.
					if e.InvolvedObject.UID == "" || e.InvolvedObject.UID == tcp.UID {
						d.Events = append(d.Events, e)
					}
				}
			}
			return output.Describe(a.streams.Out, d)
		},
	}
	cmd.Flags().IntVar(&events, "events", 10, "how many of the latest events to show (0: none)")
	return cmd
}
