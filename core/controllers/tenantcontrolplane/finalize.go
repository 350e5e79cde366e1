package tenantcontrolplane

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
)

// ReasonDeprovisioningFailed: the plugin could not delete the tenant's slice; deletion waits.
const ReasonDeprovisioningFailed = "DeprovisioningFailed"

// finalize deprovisions the TCP's datastore slice, then releases the finalizer. The objects the
// TCP owns go with it through the garbage collector. DeleteTenant is idempotent, and the
// finalizer is only removed after it succeeded, so the slice is removed exactly once and never
// leaked.
func (r *Reconciler) finalize(ctx context.Context, tcp *kamajiv1alpha1.TenantControlPlane) (ctrl.Result, error) {
	if r.Tenants != nil {
		// The tenant goes with its control plane: stop watching it.
		r.Tenants.Stop(client.ObjectKeyFromObject(tcp))
	}
	if !containsString(tcp.Finalizers, Finalizer) {
		return ctrl.Result{}, nil
	}
	p := &pass{tcp: tcp, status: *tcp.Status.DeepCopy(), now: r.now()}
	if err := r.deprovision(ctx, p); err != nil {
		se, _ := asStepError(err)
		if se == nil {
			se = fail(kamajiv1alpha1.ConditionDataStoreReady, ReasonDeprovisioningFailed, err)
		}
		p.setCondition(se.condition, metav1.ConditionFalse, se.reason, se.err.Error())
		if serr := r.applyStatus(ctx, p); serr != nil {
			log.FromContext(ctx).Error(serr, "recording the deprovisioning failure")
		}
		return resultFor(se)
	}
	return ctrl.Result{}, apply.SetFinalizer(ctx, r.Client, tcp, Finalizer, false)
}

func (r *Reconciler) deprovision(ctx context.Context, p *pass) error {
	const cond = kamajiv1alpha1.ConditionDataStoreReady
	// The DataStore that holds the data is the one the status recorded (the spec may name a
	// migration target that never received anything).
	name := p.status.Storage.DataStoreName
	if name == "" {
		return nil // never provisioned
	}
	ds := &kamajiv1alpha1.DataStore{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, ds); err != nil {
		if apierrors.IsNotFound(err) {
			// Deleting a DataStore in use is refused at admission; if it went anyway, its data went with it.
			log.FromContext(ctx).Info("DataStore already gone; nothing to deprovision", "dataStore", name)
			return nil
		}
		return err
	}
	cfg, err := r.DataStores.Get(ctx, ds)
	if err != nil {
		return fail(cond, ReasonDataStoreSecretMissing, fmt.Errorf("DataStore %s: %w", name, err))
	}
	plugin, _, err := r.Plugins.DataStore(ctx, ds.Spec.Driver)
	if err != nil {
		return pluginFailure(cond, err)
	}
	tenant := Tenant(p.tcp)
	tenant.Schema, tenant.Username = p.status.Storage.Setup.Schema, p.status.Storage.Setup.User
	cctx, cancel := context.WithTimeout(ctx, r.pluginCallTimeout())
	defer cancel()
	if err := plugin.DeleteTenant(cctx, cfg, tenant); err != nil {
		return fail(cond, ReasonDeprovisioningFailed, fmt.Errorf("DataStore %s: %w", name, err))
	}
	log.FromContext(ctx).Info("datastore slice deprovisioned", "dataStore", name, "schema", tenant.Schema)
	return nil
}
