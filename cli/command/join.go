package command

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/openhcp/kamaji/cli/jointoken"
	"github.com/openhcp/kamaji/cli/kubeconfig"
)

func (a *app) joinCommand() *cobra.Command {
	var ttl time.Duration
	var description string
	var v kubeconfig.Variant
	cmd := &cobra.Command{
		Use:   "join-command NAME",
		Short: "Print the kubeadm join line for a new worker node of a tenant",
		Long: `Print the line a new worker runs to join the tenant, as
kubeadm token create --print-join-command does:

  kubeadm join <endpoint> --token <id>.<secret> --discovery-token-ca-cert-hash sha256:<hash>

A fresh bootstrap token is created in the tenant's kube-system (Secret bootstrap-token-<id>,
usages authentication and signing, group ` + jointoken.NodeGroup + `,
expiring after --ttl) through the tenant's admin kubeconfig (admin.conf; --super-admin for
super-admin.conf). The endpoint is the tenant's status.controlPlaneEndpoint; the hash pins the
tenant CA (sha256 of its SubjectPublicKeyInfo), the one in that kubeconfig.

The tenant must be Ready. The token is a credential: whoever holds it may join a node until
it expires (kubeadm token delete <id> removes it).`,
		Example: `  # The line to run on a new node
  kubectl kamaji join-command tenant-00 -n team-a

  # A token valid for one hour only
  kubectl kamaji join-command tenant-00 --ttl 1h`,
		Args:              nameArg,
		ValidArgsFunction: a.completeTenants,
		RunE: func(cmd *cobra.Command, args []string) error {
			if ttl < 0 {
				return fmt.Errorf("--ttl must not be negative (0: a token that never expires)")
			}
			tcp, err := a.target(cmd, args)
			if err != nil {
				return err
			}
			endpoint := strings.TrimPrefix(strings.TrimPrefix(tcp.Status.ControlPlaneEndpoint, "https://"), "http://")
			data, err := a.tenantKubeconfig(cmd, tcp, v)
			if err != nil {
				return err
			}
			if endpoint == "" {
				return fmt.Errorf("TenantControlPlane %s/%s has no status.controlPlaneEndpoint yet", tcp.Namespace, tcp.Name)
			}
			caPEM, err := kubeconfig.CA(data)
			if err != nil {
				return fmt.Errorf("%s of %s: %w", v.Key(), tcp.Name, err)
			}
			hashes, err := jointoken.CAHashes(caPEM)
			if err != nil {
				return err
			}
			tenant, err := a.tenant(data)
			if err != nil {
				return fmt.Errorf("the tenant's %s: %w", v.Key(), err)
			}
			// A token ID is 6 characters of [a-z0-9]: a collision is unlikely, and a second draw
			// settles it.
			var tok jointoken.Token
			for attempt := 0; ; attempt++ {
				if tok, err = jointoken.New(); err != nil {
					return err
				}
				s := jointoken.Secret(tok, ttl, a.now(), description)
				_, err = tenant.Secrets(s.Namespace).Create(ctx(cmd), s, metav1.CreateOptions{FieldManager: "kubectl-kamaji"})
				if err == nil {
					break
				}
				if !apierrors.IsAlreadyExists(err) || attempt > 0 {
					e := explain(err)
					hint := ""
					if apierrors.IsForbidden(err) && !v.SuperAdmin {
						hint = " (admin.conf needs the tenant's kubeadm:cluster-admins binding; --super-admin does not)"
					}
					return fmt.Errorf("creating the bootstrap token in tenant %s: %v%s", tcp.Name, e, hint)
				}
			}
			fmt.Fprintln(a.streams.Out, jointoken.Command(endpoint, tok, hashes))
			return nil
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", jointoken.DefaultTTL, "how long the token is valid (0: never expires)")
	cmd.Flags().StringVar(&description, "description", "created by kubectl kamaji join-command", "the token's description")
	cmd.Flags().BoolVar(&v.SuperAdmin, "super-admin", false, "create the token with super-admin.conf instead of admin.conf")
	cmd.Flags().BoolVar(&v.InCluster, "in-cluster", false, "reach the tenant through its Service (admin.svc), from inside the admin cluster")
	return cmd
}
