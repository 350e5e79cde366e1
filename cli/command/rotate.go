package command

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/tenantpki"

	"github.com/openhcp/kamaji/cli/status"
)

func (a *app) rotateCommand() *cobra.Command {
	w := waitFlags{}
	var ca bool
	cmd := &cobra.Command{
		Use:   "rotate NAME [--ca]",
		Short: "Reissue a tenant's certificates now, or replace its CA with --ca",
		Long: `Ask the operator to reissue certificates now, with the annotation
` + kamajiv1alpha1.RotateCertificatesAnnotation + `, which it removes once honoured:

  rotate NAME        on the TenantControlPlane: every leaf certificate and kubeconfig is
                     reissued from the same CA (apiserver, kubelet client, front-proxy client,
                     admin/controller-manager/scheduler kubeconfigs), then the pods roll.
                     Kubeconfigs you already hold keep working until they expire.
  rotate NAME --ca   on the tenant's CA Secret (<name>-ca): a new CA is made and every
                     certificate and kubeconfig that depends on it follows; the tenant shows
                     CertificateAuthorityRotating until its pods run with them. The old CA
                     stays trusted until the Secret's annotation
                     ` + tenantpki.CAPreviousUntilAnnotation + ` (the manager's
                     --ca-rotation-overlap, 24h by default): fetch your kubeconfig again
                     (kubeconfig NAME) and renew nodes' client certificates before then.

Waits until the annotation is honoured, the reissued certificates are recorded in the status
and the control plane is Ready again (or Sleeping, when scaled to zero).`,
		Example: `  # Reissue every leaf certificate of a tenant
  kubectl kamaji rotate tenant-00 -n team-a

  # Replace the tenant's CA, then refresh your merged kubeconfig
  kubectl kamaji rotate tenant-00 --ca --timeout 10m
  kubectl kamaji kubeconfig tenant-00 --merge --overwrite`,
		Args:              nameArg,
		ValidArgsFunction: a.completeTenants,
		RunE: func(cmd *cobra.Command, args []string) error {
			tcp, err := a.target(cmd, args)
			if err != nil {
				return err
			}
			if err := refusePaused(tcp, w, "rotate certificates of"); err != nil {
				return err
			}
			if ca {
				return a.rotateCA(cmd, tcp, w)
			}
			before := tcp.Status.Certificates.APIServer.Checksum
			tcp, err = a.patchTCP(ctx(cmd), tcp, func(*kamajiv1alpha1.TenantControlPlane) (map[string]any, error) {
				return annotations(map[string]any{kamajiv1alpha1.RotateCertificatesAnnotation: a.now().UTC().Format(time.RFC3339)}), nil
			})
			if err != nil {
				return err
			}
			if !w.wait {
				fmt.Fprintf(a.streams.Out, "Rotation of %s's certificates requested.\n", tcp.Name)
				return nil
			}
			tcp, err = a.waitTCP(ctx(cmd), tcp, tcp.Name+"'s certificates to be reissued", w, func(_ context.Context, t *kamajiv1alpha1.TenantControlPlane) (bool, string, error) {
				if _, pending := t.Annotations[kamajiv1alpha1.RotateCertificatesAnnotation]; pending {
					return false, "rotation requested, not honoured yet", nil
				}
				if before != "" && t.Status.Certificates.APIServer.Checksum == before {
					return false, "certificates reissued, status not updated yet", nil
				}
				if !status.Settled(t) {
					return false, "certificates reissued, control plane rolling out", nil
				}
				return true, "", nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "%s's certificates and kubeconfigs are reissued; it is %s.\n", tcp.Name, status.State(tcp))
			return nil
		},
	}
	cmd.Flags().BoolVar(&ca, "ca", false, "replace the tenant's CA (annotate its <name>-ca Secret) and everything signed by it")
	w.add(cmd)
	return cmd
}

func (a *app) rotateCA(cmd *cobra.Command, tcp *kamajiv1alpha1.TenantControlPlane, w waitFlags) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	name := tcp.Status.Certificates.CA.SecretName
	if name == "" {
		name = tenantpki.SecretName(tcp.Name, tenantpki.CA)
	}
	key := client.ObjectKey{Namespace: tcp.Namespace, Name: name}
	s := &corev1.Secret{}
	if err := c.Get(ctx(cmd), key, s); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("the CA Secret %s/%s does not exist (%s)", tcp.Namespace, name,
				conditionText(status.Condition(tcp, kamajiv1alpha1.ConditionCertificatesReady), kamajiv1alpha1.ConditionCertificatesReady))
		}
		return explain(err)
	}
	if _, paused := s.Annotations[kamajiv1alpha1.PausedAnnotation]; paused && w.wait {
		return fmt.Errorf("the CA Secret %s/%s is paused (%s): the manager would not replace it; remove the annotation first", tcp.Namespace, name, kamajiv1alpha1.PausedAnnotation)
	}
	before := tcp.Status.Certificates.CA.Checksum
	body, _ := json.Marshal(annotations(map[string]any{kamajiv1alpha1.RotateCertificatesAnnotation: a.now().UTC().Format(time.RFC3339)}))
	if err := c.Patch(ctx(cmd), s, client.RawPatch(types.MergePatchType, body)); err != nil {
		return explain(err)
	}
	if !w.wait {
		fmt.Fprintf(a.streams.Out, "Rotation of %s's CA requested (Secret %s).\n", tcp.Name, name)
		return nil
	}
	tcp, err = a.waitTCP(ctx(cmd), tcp, tcp.Name+"'s CA to be replaced", w, func(ctx context.Context, t *kamajiv1alpha1.TenantControlPlane) (bool, string, error) {
		cur := &corev1.Secret{}
		if err := c.Get(ctx, key, cur); err != nil {
			if ctx.Err() != nil {
				return false, "", ctx.Err()
			}
			return false, "", explain(err)
		}
		if _, pending := cur.Annotations[kamajiv1alpha1.RotateCertificatesAnnotation]; pending {
			return false, "CA rotation requested, not honoured yet", nil
		}
		if before != "" && t.Status.Certificates.CA.Checksum == before {
			return false, "new CA made, status not updated yet", nil
		}
		if !status.Settled(t) {
			return false, "new CA made, certificates and pods following", nil
		}
		return true, "", nil
	})
	if err != nil {
		return err
	}
	until := "the end of the overlap"
	if cur := (&corev1.Secret{}); c.Get(ctx(cmd), key, cur) == nil && cur.Annotations[tenantpki.CAPreviousUntilAnnotation] != "" {
		until = cur.Annotations[tenantpki.CAPreviousUntilAnnotation]
	}
	fmt.Fprintf(a.streams.Out, "%s has a new CA; it is %s. The old CA stays trusted until %s: before then, `kubectl kamaji kubeconfig %s -n %s` gives a kubeconfig signed by the new one.\n",
		tcp.Name, status.State(tcp), until, tcp.Name, tcp.Namespace)
	return nil
}
