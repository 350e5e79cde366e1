package tenantcontrolplane

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
)

// Reasons of deletion.
const (
	// ReasonDeprovisioningFailed: the plugin could not delete the tenant's slice; deletion waits.
	ReasonDeprovisioningFailed = "DeprovisioningFailed"
	// ReasonSliceAbandoned: the TCP was deleted with the abandon annotation; its slice was left.
	ReasonSliceAbandoned = "DataStoreSliceAbandoned"
)

// finalize deprovisions the TCP's datastore slices (its DataStore and every override the status
// recorded), then releases the finalizer. The objects the TCP owns go with it through the
// garbage collector. DeleteTenant is idempotent and only removes what this TCP owns, and the
// finalizer is only removed after every slice is gone, so nothing is leaked and nothing of
// another tenant is touched. While a datastore fails, the finalizer stays, DataStoreReady says
// why, and the retries back off (the controller's per-object exponential backoff).
func (r *Reconciler) finalize(ctx context.Context, tcp *kamajiv1alpha1.TenantControlPlane) (ctrl.Result, error) {
	r.Starts.Done(client.ObjectKeyFromObject(tcp))
	if r.Tenants != nil {
		// The tenant goes with its control plane: stop watching it.
		r.Tenants.Stop(client.ObjectKeyFromObject(tcp))
	}
	if !containsString(tcp.Finalizers, Finalizer) {
		return ctrl.Result{}, nil
	}
	p := &pass{tcp: tcp, status: *tcp.Status.DeepCopy(), now: r.now()}
	if _, abandon := tcp.Annotations[kamajiv1alpha1.AbandonDataStoreSliceAnnotation]; abandon {
		r.abandon(ctx, p)
	} else if err := r.deprovision(ctx, p); err != nil {
		se, _ := asStepError(err)
		if se == nil {
			se = fail(kamajiv1alpha1.ConditionDataStoreReady, ReasonDeprovisioningFailed, err)
		}
		p.setCondition(se.condition, metav1.ConditionFalse, se.reason, se.err.Error()+
			fmt.Sprintf(" (deletion waits; to delete the TCP and leave its data, annotate it with %s)", kamajiv1alpha1.AbandonDataStoreSliceAnnotation))
		// The status write records the transition as a Warning Event, once, not at each retry.
		if serr := r.applyStatus(ctx, p); serr != nil {
			log.FromContext(ctx).Error(serr, "recording the deprovisioning failure")
		}
		// Returned as an error: the workqueue backs off exponentially per object.
		return ctrl.Result{}, se
	}
	return ctrl.Result{}, apply.SetFinalizer(ctx, r.Client, tcp, Finalizer, false)
}

// slice is one datastore slice a TCP may have touched.
type slice struct{ dataStore, schema, user string }

// recordedSlices are the slices the status recorded: the main DataStore's and each override's.
// They were recorded before their first EnsureTenant, so a half-provisioned slice is in the list.
func recordedSlices(st kamajiv1alpha1.StorageStatus) []slice {
	var out []slice
	if st.DataStoreName != "" {
		out = append(out, slice{st.DataStoreName, st.Setup.Schema, st.Setup.User})
	}
	for _, o := range st.Overrides {
		out = append(out, slice{o.DataStoreName, o.Schema, o.User})
	}
	// A migration holds a second slice: the target before the switch, the source after it; a
	// failed one may have left a partial target it could not remove.
	if m := st.Migration; m != nil {
		for _, ds := range []string{m.Source, m.Target} {
			if ds == m.Target && m.TargetDriver == "" {
				continue // refused before anything was provisioned there
			}
			if ds != "" && ds != st.DataStoreName {
				out = append(out, slice{ds, st.Setup.Schema, st.Setup.User})
			}
		}
	}
	return out
}

func (r *Reconciler) deprovision(ctx context.Context, p *pass) error {
	var errs []error
	for _, s := range recordedSlices(p.status.Storage) {
		if err := r.deleteSlice(ctx, p, s); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	if se, ok := asStepError(errs[0]); ok && len(errs) == 1 {
		return se
	}
	return fail(kamajiv1alpha1.ConditionDataStoreReady, ReasonDeprovisioningFailed, errors.Join(errs...))
}

func (r *Reconciler) deleteSlice(ctx context.Context, p *pass, s slice) error {
	const cond = kamajiv1alpha1.ConditionDataStoreReady
	ds := &kamajiv1alpha1.DataStore{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: s.dataStore}, ds); err != nil {
		if apierrors.IsNotFound(err) {
			// Deleting a DataStore in use is refused at admission; if it went anyway, its data went with it.
			log.FromContext(ctx).Info("DataStore already gone; nothing to deprovision", "dataStore", s.dataStore)
			return nil
		}
		return err
	}
	_, cfg, plugin, err := r.dataStorePlugin(ctx, cond, s.dataStore)
	if err != nil {
		return err
	}
	tenant := Tenant(p.tcp)
	tenant.Schema, tenant.Username = s.schema, s.user
	// Whatever happens to the call, no slice of this TCP is taken as ensured any longer.
	r.ensured.forget(client.ObjectKeyFromObject(p.tcp))
	cctx, cancel := context.WithTimeout(ctx, r.pluginCallTimeout())
	defer cancel()
	if err := plugin.DeleteTenant(cctx, cfg, tenant); err != nil {
		return fail(cond, ReasonDeprovisioningFailed, fmt.Errorf("DataStore %s: %w", s.dataStore, err))
	}
	log.FromContext(ctx).Info("datastore slice deprovisioned", "dataStore", s.dataStore, "schema", s.schema)
	r.event(p.tcp, corev1.EventTypeNormal, "Deprovisioned", "Deprovision", fmt.Sprintf("slice %q (user %q) removed from DataStore %s", s.schema, s.user, s.dataStore))
	return nil
}

// abandon lets a TCP go without deprovisioning, when its datastore is gone for good. What was
// left is recorded where it outlives the TCP: an Event on each DataStore (and the manager log).
func (r *Reconciler) abandon(ctx context.Context, p *pass) {
	var left []string
	for _, s := range recordedSlices(p.status.Storage) {
		msg := fmt.Sprintf("TenantControlPlane %s/%s (uid %s) was deleted with %s: its slice %q (user %q) was left on this DataStore",
			p.tcp.Namespace, p.tcp.Name, p.tcp.UID, kamajiv1alpha1.AbandonDataStoreSliceAnnotation, s.schema, s.user)
		ds := &kamajiv1alpha1.DataStore{}
		if err := r.Client.Get(ctx, client.ObjectKey{Name: s.dataStore}, ds); err == nil {
			r.event(ds, corev1.EventTypeWarning, ReasonSliceAbandoned, "Abandon", msg)
		}
		left = append(left, s.dataStore+":"+s.schema+"/"+s.user)
	}
	log.FromContext(ctx).Info("datastore slices abandoned on request", "uid", p.tcp.UID, "slices", strings.Join(left, ", "))
}
