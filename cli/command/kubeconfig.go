package command

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"

	"github.com/openhcp/kamaji/cli/kubeconfig"
	"github.com/openhcp/kamaji/cli/status"
)

type kubeconfigOptions struct {
	variant     kubeconfig.Variant
	file        string
	merge       bool
	contextName string
	overwrite   bool
	use         bool
}

func (a *app) kubeconfigCommand() *cobra.Command {
	o := kubeconfigOptions{}
	cmd := &cobra.Command{
		Use:   "kubeconfig NAME",
		Short: "Print, write or merge a tenant's admin kubeconfig",
		Long: `Get a tenant's kubeconfig from its admin kubeconfig Secret (<name>-admin-kubeconfig), which
the operator keeps with four variants:

  admin.conf         (default) user kubernetes-admin, group kubeadm:cluster-admins: bound to
                     cluster-admin in the tenant, so RBAC can revoke it
  super-admin.conf   (--super-admin) group system:masters: bypasses RBAC; for break-glass use
  admin.svc, super-admin.svc
                     (--in-cluster) the same credentials, dialling the tenant Service
                     (<name>.<namespace>.svc) instead of the public endpoint: for programs
                     running inside the admin cluster

By default the kubeconfig goes to stdout; --file writes it to a file (mode 0600). --merge
adds it to your own kubeconfig (the file kubectl config would write: --kubeconfig, else the
first of $KUBECONFIG, else ~/.kube/config) as a context named --context-name (default
<namespace>/<name>), with a cluster and a user of the same name; an existing entry of that name
is only replaced with --overwrite, and --use makes it the current context.

The tenant must be Ready (a sleeping tenant has no apiserver to talk to: wake it first), and
the Secret must exist; otherwise the command says which and why.`,
		Example: `  # Use a tenant's kubeconfig for one command
  kubectl kamaji kubeconfig tenant-00 > tenant-00.conf
  kubectl --kubeconfig tenant-00.conf get ns

  # Add it to your kubeconfig as context "team-a/tenant-00" and switch to it
  kubectl kamaji kubeconfig tenant-00 -n team-a --merge --use
  kubectl get ns

  # After a CA rotation: replace the merged context with the new credentials
  kubectl kamaji kubeconfig tenant-00 --merge --overwrite

  # The system:masters kubeconfig, dialling the Service, for a controller in the admin cluster
  kubectl kamaji kubeconfig tenant-00 --super-admin --in-cluster --file /tmp/tenant-00.svc.conf`,
		Args:              nameArg,
		ValidArgsFunction: a.completeTenants,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.merge && o.file != "" {
				return fmt.Errorf("--merge and --file are exclusive: --merge writes to your kubeconfig")
			}
			if !o.merge && (o.overwrite || o.use) {
				return fmt.Errorf("--overwrite and --use go with --merge")
			}
			tcp, err := a.target(cmd, args)
			if err != nil {
				return err
			}
			data, err := a.tenantKubeconfig(cmd, tcp, o.variant)
			if err != nil {
				return err
			}
			if c := status.Condition(tcp, kamajiv1alpha1.ConditionTenantConfigured); !o.variant.SuperAdmin && (c == nil || c.Status != metav1.ConditionTrue) {
				fmt.Fprintf(a.streams.ErrOut, "Warning: %s is not configured yet (%s): admin.conf's cluster-admin binding may be missing; --super-admin works regardless\n",
					tcp.Name, conditionText(c, kamajiv1alpha1.ConditionTenantConfigured))
			}
			switch {
			case o.merge:
				name := o.contextName
				if name == "" {
					name = tcp.Namespace + "/" + tcp.Name
				}
				file, err := kubeconfig.MergeInto(a.flags.ToRawKubeConfigLoader().ConfigAccess(), data, name, o.overwrite, o.use)
				if err != nil {
					return err
				}
				if o.use {
					fmt.Fprintf(a.streams.Out, "Context %q added to %s and made current.\n", name, file)
				} else {
					fmt.Fprintf(a.streams.Out, "Context %q added to %s: kubectl --context %s get ns\n", name, file, quoteArg(name))
				}
				return nil
			case o.contextName != "":
				if data, err = kubeconfig.Rename(data, o.contextName); err != nil {
					return err
				}
			}
			if o.file != "" {
				if err := os.WriteFile(o.file, data, 0o600); err != nil {
					return err
				}
				// WriteFile keeps the mode of an existing file: a kubeconfig holds a key.
				if err := os.Chmod(o.file, 0o600); err != nil {
					return err
				}
				fmt.Fprintf(a.streams.ErrOut, "Wrote %s's %s to %s\n", tcp.Name, o.variant.Key(), o.file)
				return nil
			}
			_, err = a.streams.Out.Write(data)
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.variant.SuperAdmin, "super-admin", false, "super-admin.conf (system:masters) instead of admin.conf")
	f.BoolVar(&o.variant.InCluster, "in-cluster", false, "the .svc variant, dialling the tenant Service from inside the admin cluster")
	f.StringVar(&o.file, "file", "", "write the kubeconfig to this file (mode 0600) instead of stdout")
	f.BoolVar(&o.merge, "merge", false, "add the kubeconfig to your kubeconfig as a new context")
	f.StringVar(&o.contextName, "context-name", "", "name of the context, cluster and user (default <namespace>/<name> with --merge; the Secret's own names otherwise)")
	f.BoolVar(&o.overwrite, "overwrite", false, "with --merge, replace a context, cluster or user of the same name")
	f.BoolVar(&o.use, "use", false, "with --merge, make the new context the current one")
	return cmd
}

// tenantKubeconfig reads one variant of the tenant's admin kubeconfig, refusing when the
// tenant is not Ready or the Secret is missing.
func (a *app) tenantKubeconfig(cmd *cobra.Command, tcp *kamajiv1alpha1.TenantControlPlane, v kubeconfig.Variant) ([]byte, error) {
	if err := status.NotServing(tcp); err != nil {
		return nil, err
	}
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	name := kubeconfig.SecretName(tcp)
	s := &corev1.Secret{}
	if err := c.Get(ctx(cmd), client.ObjectKey{Namespace: tcp.Namespace, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("the admin kubeconfig Secret %s/%s does not exist (%s)", tcp.Namespace, name,
				conditionText(status.Condition(tcp, kamajiv1alpha1.ConditionKubeconfigsReady), kamajiv1alpha1.ConditionKubeconfigsReady))
		}
		return nil, explain(err)
	}
	return kubeconfig.FromSecret(s, v.Key())
}

// conditionText describes a condition, or says it is not reported.
func conditionText(c *metav1.Condition, typ string) string {
	if c == nil {
		return typ + " not reported"
	}
	return status.Describe(*c)
}

// quoteArg quotes a shell argument when it needs it.
func quoteArg(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == '/' || r == '@' || r == ':') {
			return "'" + s + "'"
		}
	}
	return s
}
