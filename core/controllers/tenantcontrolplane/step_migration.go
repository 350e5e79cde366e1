package tenantcontrolplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/apply"
	"github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/migration"
	"github.com/openhcp/kamaji/core/tenant"
	"github.com/openhcp/kamaji/core/tenant/writeblock"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// Reasons of a migration, on DataStoreReady.
const (
	ReasonMigrating       = "Migrating"
	ReasonMigrationFailed = "MigrationFailed"
	ReasonMigrated        = "Migrated"

	// DefaultMigrationTimeout applies without the kamaji.clastix.io/migration-timeout annotation.
	DefaultMigrationTimeout = 5 * time.Minute
	// freezeRecheck: how soon to look again while the tenant apiserver loads the freeze.
	freezeRecheck = time.Second
)

// Freeze is the write freeze of a migrating tenant: everything but kube-system and
// kube-node-lease (nodes keep their leases, the control plane its leader elections). Its
// Webhook is filled in where it is applied (Options.TenantWebhook).
var Freeze = writeblock.Block{
	Name:       "kamaji-freeze",
	Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete},
	Exempt:     []string{metav1.NamespaceSystem, corev1.NamespaceNodeLease},
	Message:    "this tenant is being migrated to another datastore: writes are frozen (except in kube-system and kube-node-lease) until the migration ends",
}

// migrating reports whether a migration is under way (a failed one is over).
func migrating(st kamajiv1alpha1.StorageStatus) bool {
	return st.Migration != nil && st.Migration.Phase != kamajiv1alpha1.MigrationFailed
}

// stepMigration moves the tenant's data to the DataStore spec.dataStore names, one phase after
// the other, each recorded in status.storage.migration before it acts, so that a restarted
// manager resumes or rolls back: provision the target slice, freeze writes in the tenant, copy
// and verify (key count and checksum of both sides), switch the control plane to the target,
// then (once the pods run on it: stepMigrationAfterRollout) lift the freeze and deprovision the
// source. A failure or the deadline before the switch completes rolls back to the source,
// unfrozen, with the partial target removed: nothing of the source is touched before the end.
func stepMigration(ctx context.Context, r *Reconciler, p *pass) error {
	return steadily(p, migrate(ctx, r, p))
}

// steadily makes a failed step of a migration under way come back steadily rather than after
// the controller's exponential backoff, which grows to minutes: before the switch by the
// deadline at the latest, so that an unreachable target rolls back on time; from the switch on
// (and while rolling back) within migrationRetry, so that a passing failure (the tenant
// apiserver busy, a status write refused) does not keep the tenant frozen for minutes.
func steadily(p *pass, err error) error {
	m := p.status.Storage.Migration
	if err == nil || m == nil || m.Phase == kamajiv1alpha1.MigrationFailed {
		return err
	}
	left := migrationRetry
	switch m.Phase {
	case kamajiv1alpha1.MigrationProvisioning, kamajiv1alpha1.MigrationFreezing, kamajiv1alpha1.MigrationCopying:
		left = m.Deadline.Sub(p.now)
	}
	return byDeadline(err, left)
}

// migrate is stepMigration's pass, whose errors steadily times.
func migrate(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionDataStoreReady
	st := &p.status.Storage
	m := st.Migration
	want := p.tcp.Spec.DataStore

	if m != nil && m.Phase == kamajiv1alpha1.MigrationFailed {
		if want == m.Target {
			// Stays on the source until the spec names another DataStore (or the source).
			if err := provisionCurrent(ctx, r, p); err != nil {
				return err
			}
			p.setCondition(cond, metav1.ConditionFalse, ReasonMigrationFailed, fmt.Sprintf(
				"the migration to DataStore %s failed and was rolled back: %s. The tenant runs on DataStore %s; set spec.dataStore to %q, or to another DataStore to try again",
				m.Target, m.Message, st.DataStoreName, st.DataStoreName))
			return nil
		}
		// Leaving a failed migration: a target slice the rollback could not remove (its datastore
		// was unreachable) is removed now, before the record of it goes.
		if m.TargetDriver != "" {
			if err := r.deleteSlice(ctx, p, slice{m.Target, st.Setup.Schema, st.Setup.User}); err != nil {
				return err
			}
		}
		st.Migration, m = nil, nil
		if want == st.DataStoreName {
			return stepDataStore(ctx, r, p) // back where the data is: an ordinary pass
		}
	}
	if m == nil {
		timeout, err := migrationTimeout(p.tcp)
		if err != nil {
			return fail(cond, ReasonDataStoreInvalid, err)
		}
		m = &kamajiv1alpha1.StorageMigrationStatus{
			Source: st.DataStoreName, Target: want, Phase: kamajiv1alpha1.MigrationProvisioning,
			StartTime: metav1.NewTime(p.now), Deadline: metav1.NewTime(p.now.Add(timeout)),
		}
		st.Migration = m
		if err := r.recordStatus(ctx, p); err != nil {
			return fail(cond, ReasonProvisioningFailed, fmt.Errorf("recording the migration before starting it: %w", err))
		}
		r.event(p.tcp, corev1.EventTypeNormal, ReasonMigrating, "Migrate", fmt.Sprintf("migrating from DataStore %s to %s", m.Source, m.Target))
	}
	switch m.Phase {
	case kamajiv1alpha1.MigrationRollingBack, kamajiv1alpha1.MigrationUnfreezing, kamajiv1alpha1.MigrationCleaningUp:
		// Past the point of return (the target runs and is verified) or already returning.
	default:
		why := ""
		switch {
		case want != m.Target:
			why = fmt.Sprintf("spec.dataStore changed to %q during the migration", want)
		case p.now.After(m.Deadline.Time):
			why = deadlinePassed(m)
		}
		if why != "" {
			return r.rollBack(ctx, p, why)
		}
	}

	for {
		phase := m.Phase
		var err error
		switch phase {
		case kamajiv1alpha1.MigrationProvisioning:
			err = r.migrationProvision(ctx, p)
		case kamajiv1alpha1.MigrationFreezing:
			err = r.migrationFreeze(ctx, p)
		case kamajiv1alpha1.MigrationCopying:
			err = r.migrationCopy(ctx, p, false)
		case kamajiv1alpha1.MigrationRollingBack:
			return r.rollBack(ctx, p, m.Message)
		case kamajiv1alpha1.MigrationFailed:
			return nil // rolled back within this pass: failMigration set the condition
		default: // Switching, Unfreezing, CleaningUp: the control plane runs on what the status says
			if err := provisionCurrent(ctx, r, p); err != nil {
				return err
			}
			if m.Phase == kamajiv1alpha1.MigrationSwitching {
				// The deadline holds until the pods run on the target: come back by it even when
				// the Deployment's status stays as it is (pods that never become ready), rather
				// than keep the tenant frozen until the Deployment's own progress deadline.
				p.requeue(m.Deadline.Sub(p.now) + time.Second)
			}
			p.setCondition(cond, metav1.ConditionFalse, ReasonMigrating, fmt.Sprintf("migrating from DataStore %s to %s: %s (%s copied and verified)", m.Source, m.Target, m.Phase, m.Copied))
			return nil
		}
		if err != nil {
			return err
		}
		if m.Phase == phase {
			return nil // waiting within the phase
		}
	}
}

// migrationRetry is how often a phase that failed (an unreachable target) is tried again.
const migrationRetry = 5 * time.Second

// byDeadline makes a failed phase come back steadily and by the migration's deadline at the
// latest, rather than after the controller's backoff (which grows to minutes), so that an
// unreachable target rolls back on time.
func byDeadline(err error, left time.Duration) error {
	se, ok := asStepError(err)
	if !ok {
		se = fail(kamajiv1alpha1.ConditionDataStoreReady, ReasonMigrating, err)
	}
	limit := min(max(left, 0)+time.Second, migrationRetry)
	if se.retryAfter == 0 || se.retryAfter > limit {
		se.retryAfter = limit
	}
	// A configuration error says it is retried with backoff: not during a migration.
	if msg := se.err.Error(); strings.Contains(msg, retrying) {
		se.err = &rephrased{msg: strings.ReplaceAll(msg, retrying, "retrying within "+se.retryAfter.String()), err: se.err}
	}
	return se
}

// rephrased is an error with another message, whose cause errors.Is and errors.As still find.
type rephrased struct {
	msg string
	err error
}

func (e *rephrased) Error() string { return e.msg }
func (e *rephrased) Unwrap() error { return e.err }

// migrationProvision provisions the target slice (recorded in the status already, as the
// migration's target, so deletion and rollback know it) and checks both drivers can stream.
func (r *Reconciler) migrationProvision(ctx context.Context, p *pass) error {
	const cond = kamajiv1alpha1.ConditionDataStoreReady
	m := p.status.Storage.Migration
	if err := provisionCurrent(ctx, r, p); err != nil {
		return err
	}
	if shared := r.sharedEndpoint(ctx, p.dataStore, m.Target); shared != "" {
		return r.rollBack(ctx, p, fmt.Sprintf("DataStores %s and %s share the endpoint %s: they are one datastore, where the tenant's slice on both is the same one, and a migration would copy it onto itself", m.Source, m.Target, shared))
	}
	if m.TargetDriver == "" {
		// From here on the target may hold a (partial) slice of ours: recorded first, so that a
		// rollback or the TCP's deletion removes it; never set for a target refused above.
		ds := &kamajiv1alpha1.DataStore{}
		if err := r.Client.Get(ctx, client.ObjectKey{Name: m.Target}, ds); err != nil {
			return fail(cond, ReasonDataStoreNotFound, fmt.Errorf("DataStore %s: %w", m.Target, err))
		}
		m.TargetDriver = ds.Spec.Driver
		if err := r.recordMigration(ctx, p); err != nil {
			return err
		}
	}
	target, err := r.migrationTarget(ctx, p)
	if se, ok := asStepError(err); ok && (se.reason == ReasonSliceOwned || se.reason == ReasonDataStoreInvalid) {
		return r.rollBack(ctx, p, se.err.Error()) // refused for good: no point waiting for the deadline
	}
	if err != nil {
		return err
	}
	for _, s := range []struct {
		name   string
		plugin datastore.Plugin
	}{{p.dataStore.Name, target.source.Plugin}, {m.Target, target.target.Plugin}} {
		cctx, cancel := context.WithTimeout(ctx, r.pluginCallTimeout())
		caps, err := s.plugin.Capabilities(cctx)
		cancel()
		if err != nil {
			return fail(cond, ReasonProvisioningFailed, fmt.Errorf("DataStore %s: %w", s.name, err))
		}
		if !slices.Contains(caps, datastore.CapabilityExportImport) {
			return r.rollBack(ctx, p, fmt.Sprintf("the driver of DataStore %s cannot export and import a tenant's keys (capability EXPORT_IMPORT)", s.name))
		}
	}
	m.Phase = kamajiv1alpha1.MigrationFreezing
	return r.recordMigration(ctx, p)
}

// migrationFreeze stops writes in the tenant and waits until its apiserver enforces it. A
// tenant scaled to zero runs no apiserver: nothing can write, nothing to freeze.
func (r *Reconciler) migrationFreeze(ctx context.Context, p *pass) error {
	const cond = kamajiv1alpha1.ConditionDataStoreReady
	m := p.status.Storage.Migration
	if err := provisionCurrent(ctx, r, p); err != nil {
		return err
	}
	if ptr.Deref(p.tcp.Spec.ControlPlane.Deployment.Replicas, 2) > 0 {
		freeze := Freeze
		wh, err := r.tenantWebhook()
		if err != nil {
			// No freeze without it, however long the migration waits: back to the source now.
			return r.rollBack(ctx, p, fmt.Sprintf("the tenant's writes cannot be frozen: %v", err))
		}
		freeze.Webhook = wh
		tc, err := r.migrationTenantClient(ctx, p)
		if err != nil {
			return err
		}
		if m.FreezeStart == nil {
			// Recorded before the freeze goes in: whatever happens next, a rollback lifts it.
			m.FreezeStart = ptr.To(metav1.NewTime(r.now()))
			if err := r.recordMigration(ctx, p); err != nil {
				return err
			}
		}
		enforced, err := freeze.Apply(ctx, tc, apply.FieldManager, metav1.NamespaceDefault)
		if err != nil {
			return fail(cond, ReasonMigrating, fmt.Errorf("freezing the tenant's writes: %w", err))
		}
		if !enforced {
			e := failf(cond, ReasonMigrating, "migrating to DataStore %s: waiting for the tenant apiserver to enforce the write freeze", m.Target)
			e.retryAfter = freezeRecheck
			return e
		}
	}
	m.Phase = kamajiv1alpha1.MigrationCopying
	if err := r.recordMigration(ctx, p); err != nil {
		return err
	}
	return r.migrationCopy(ctx, p, true)
}

// deadlinePassed says the migration was not done by its deadline.
func deadlinePassed(m *kamajiv1alpha1.StorageMigrationStatus) string {
	return fmt.Sprintf("not done within %s (annotation %s), in phase %s", m.Deadline.Sub(m.StartTime.Time).Round(time.Second), kamajiv1alpha1.MigrationTimeoutAnnotation, m.Phase)
}

// migrationCopy streams the source into the target and verifies it, then switches the status
// (and so the Deployment) to the target. Entered from a previous pass (a manager restarted
// mid-copy), the target holds a partial copy of our own: it is emptied first.
func (r *Reconciler) migrationCopy(ctx context.Context, p *pass, fresh bool) error {
	const cond = kamajiv1alpha1.ConditionDataStoreReady
	m := p.status.Storage.Migration
	if p.conn.Etcd == nil && p.conn.Kine == nil {
		if err := provisionCurrent(ctx, r, p); err != nil {
			return err
		}
	}
	s, err := r.migrationTarget(ctx, p)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), m.Deadline.Time)
	defer cancel()
	// A call cut short by the migration's deadline fails with a bare "deadline exceeded": the
	// reason to give is the deadline.
	rollBack := func(why string) error {
		if errors.Is(cctx.Err(), context.DeadlineExceeded) {
			why = deadlinePassed(m) + ": " + why
		}
		return r.rollBack(ctx, p, why)
	}
	existing, err := migration.Sum(cctx, s.target)
	if err != nil {
		return rollBack(fmt.Sprintf("reading the target DataStore %s: %v", m.Target, err))
	}
	if existing.Keys > 0 {
		if fresh && p.tcp.Annotations[kamajiv1alpha1.CleanupPriorMigrationAnnotation] != "true" {
			return rollBack(fmt.Sprintf("the tenant's slice on DataStore %s already holds %d keys (annotate the TCP with %s=true to drop them first)",
				m.Target, existing.Keys, kamajiv1alpha1.CleanupPriorMigrationAnnotation))
		}
		if err := r.resetTarget(cctx, p, s); err != nil {
			return rollBack(fmt.Sprintf("emptying the target slice: %v", err))
		}
	}
	copied, err := migration.Copy(cctx, s.source, s.target)
	if err != nil {
		return rollBack(fmt.Sprintf("copying to DataStore %s: %v", m.Target, err))
	}
	got, err := migration.Sum(cctx, s.target)
	if err != nil {
		return rollBack(fmt.Sprintf("verifying DataStore %s: %v", m.Target, err))
	}
	if !got.Equal(copied) {
		return rollBack(fmt.Sprintf("verification failed: the source gave %s, the target holds %s", copied, got))
	}
	m.Copied = copied.String()
	m.Phase = kamajiv1alpha1.MigrationSwitching
	st := &p.status.Storage
	st.DataStoreName, st.Driver = m.Target, m.TargetDriver
	st.Setup.LastUpdate = metav1.NewTime(p.now)
	if err := r.recordMigration(ctx, p); err != nil {
		return err
	}
	r.event(p.tcp, corev1.EventTypeNormal, ReasonMigrating, "Migrate", fmt.Sprintf("copied and verified %s; switching the control plane to DataStore %s", m.Copied, m.Target))
	p.conn = datastore.Connection{}
	if err := provisionCurrent(ctx, r, p); err != nil {
		return err
	}
	p.setCondition(cond, metav1.ConditionFalse, ReasonMigrating, fmt.Sprintf("migrating from DataStore %s to %s: %s (%s copied and verified)", m.Source, m.Target, m.Phase, m.Copied))
	return nil
}

// resetTarget empties the tenant's target slice by deprovisioning and provisioning it again.
func (r *Reconciler) resetTarget(ctx context.Context, p *pass, s migrationSlices) error {
	if err := s.target.Plugin.DeleteTenant(ctx, s.target.Config, s.target.Tenant); err != nil {
		return err
	}
	_, err := s.target.Plugin.EnsureTenant(ctx, s.target.Config, s.target.Tenant)
	return err
}

// stepMigrationAfterRollout ends a switch once every control-plane replica runs on the
// DataStore the status names: the freeze is lifted there (it came with the data), then the
// slice left behind is deprovisioned (the source after a migration, the target after a
// rollback).
func stepMigrationAfterRollout(ctx context.Context, r *Reconciler, p *pass) error {
	return steadily(p, endSwitch(ctx, r, p))
}

// endSwitch is stepMigrationAfterRollout's pass, whose errors steadily times.
func endSwitch(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionDataStoreReady
	st := &p.status.Storage
	m := st.Migration
	if m == nil || m.Phase == kamajiv1alpha1.MigrationFailed {
		return nil
	}
	rolledBack := m.Phase == kamajiv1alpha1.MigrationRollingBack
	if !rolledBack && m.Phase != kamajiv1alpha1.MigrationSwitching && m.Phase != kamajiv1alpha1.MigrationUnfreezing && m.Phase != kamajiv1alpha1.MigrationCleaningUp {
		return nil
	}
	replicas := ptr.Deref(p.tcp.Spec.ControlPlane.Deployment.Replicas, 2)
	if !p.deploymentObserved || !RolloutComplete(p.status.Kubernetes.Deployment, replicas) {
		return nil // the Deployment watch brings us back
	}
	if m.Phase == kamajiv1alpha1.MigrationSwitching {
		m.Phase = kamajiv1alpha1.MigrationUnfreezing
		if err := r.recordMigration(ctx, p); err != nil {
			return err
		}
	}
	// The Deployment counts no terminating pod, but such a pod may still serve requests on the
	// slice being left (and the manager's own connection may still reach it): through the
	// Service nothing is lifted, and nothing is deprovisioned at all, before it is gone.
	waitLeaving := func() error {
		leaving, err := r.podsLeaving(ctx, p, replicas)
		if err == nil && leaving == 0 {
			return nil
		}
		e := failf(cond, ReasonMigrating, "waiting for %d control-plane pod(s) of the previous DataStore to stop", leaving)
		if err != nil {
			e = fail(cond, ReasonMigrating, fmt.Errorf("listing the control-plane pods: %w", err))
		}
		e.retryAfter = freezeRecheck
		return e
	}
	if m.FreezeStart != nil && m.FreezeEnd == nil {
		lifted, err := r.unfreezeReplicas(ctx, p, replicas)
		if err != nil {
			return err
		}
		if !lifted {
			if err := waitLeaving(); err != nil {
				return err
			}
			if err := r.unfreeze(ctx, p); err != nil {
				return err
			}
		}
		// Recorded with the status of this pass, whatever stops it next.
		m.FreezeEnd = ptr.To(metav1.NewTime(r.now()))
	}
	if err := waitLeaving(); err != nil {
		return err
	}
	if rolledBack {
		return r.failMigration(ctx, p)
	}
	m.Phase = kamajiv1alpha1.MigrationCleaningUp
	if err := r.recordMigration(ctx, p); err != nil {
		return err
	}
	if p.tcp.Annotations[kamajiv1alpha1.MigrationKeepSourceAnnotation] != "true" {
		if err := r.deleteSlice(ctx, p, slice{m.Source, st.Setup.Schema, st.Setup.User}); err != nil {
			return err
		}
	}
	frozen := ""
	if m.FreezeStart != nil && m.FreezeEnd != nil {
		frozen = fmt.Sprintf(", writes frozen for %s", m.FreezeEnd.Sub(m.FreezeStart.Time).Round(100*time.Millisecond))
	}
	msg := fmt.Sprintf("migrated from DataStore %s to %s in %s: %s%s", m.Source, m.Target, r.now().Sub(m.StartTime.Time).Round(100*time.Millisecond), m.Copied, frozen)
	st.Migration = nil
	p.setCondition(cond, metav1.ConditionTrue, ReasonMigrated, msg)
	r.event(p.tcp, corev1.EventTypeNormal, ReasonMigrated, "Migrate", msg)
	return nil
}

// rollBack returns the tenant to its source: the status names the source again (the
// Deployment follows), the freeze is lifted once the pods run there, the target slice is
// removed, and the migration is recorded as failed with why.
func (r *Reconciler) rollBack(ctx context.Context, p *pass, why string) error {
	const cond = kamajiv1alpha1.ConditionDataStoreReady
	st := &p.status.Storage
	m := st.Migration
	if m.Phase != kamajiv1alpha1.MigrationRollingBack {
		m.Phase, m.Message = kamajiv1alpha1.MigrationRollingBack, why
		st.DataStoreName = m.Source
		if ds := (&kamajiv1alpha1.DataStore{}); r.Client.Get(ctx, client.ObjectKey{Name: m.Source}, ds) == nil {
			st.Driver = ds.Spec.Driver
		}
		if err := r.recordMigration(ctx, p); err != nil {
			return err
		}
		r.event(p.tcp, corev1.EventTypeWarning, ReasonMigrationFailed, "Migrate", "rolling back to DataStore "+m.Source+": "+why)
	}
	p.conn = datastore.Connection{}
	if err := provisionCurrent(ctx, r, p); err != nil {
		return err
	}
	p.setCondition(cond, metav1.ConditionFalse, ReasonMigrationFailed, fmt.Sprintf("rolling back to DataStore %s: %s", m.Source, why))
	// The pods may still run on the target (a rollback after the switch): the freeze is lifted
	// and the target removed once they run on the source again (stepMigrationAfterRollout). Before
	// the switch they never left it.
	if p.tcp.Status.Storage.DataStoreName == m.Source && m.Copied == "" {
		if m.FreezeStart != nil && ptr.Deref(p.tcp.Spec.ControlPlane.Deployment.Replicas, 2) > 0 {
			if err := r.unfreeze(ctx, p); err != nil {
				return err
			}
		}
		return r.failMigration(ctx, p)
	}
	return nil
}

// failMigration removes the target slice and records the migration as failed.
func (r *Reconciler) failMigration(ctx context.Context, p *pass) error {
	st := &p.status.Storage
	m := st.Migration
	if m.TargetDriver == "" {
		// The target was refused before anything was provisioned there (it may even be the
		// source under another name): nothing of ours to remove.
	} else if err := r.deleteSlice(ctx, p, slice{m.Target, st.Setup.Schema, st.Setup.User}); err != nil {
		// An unreachable target must not keep the tenant frozen or half-migrated: the slice
		// stays recorded (the failed migration's target) and goes when spec.dataStore moves on
		// or the TCP is deleted.
		m.Message += fmt.Sprintf(" (the partial slice on DataStore %s could not be removed yet: %v)", m.Target, err)
	} else {
		m.TargetDriver = "" // nothing of the tenant is left there
	}
	m.Phase = kamajiv1alpha1.MigrationFailed
	p.setCondition(kamajiv1alpha1.ConditionDataStoreReady, metav1.ConditionFalse, ReasonMigrationFailed, fmt.Sprintf(
		"the migration to DataStore %s failed and was rolled back: %s. The tenant runs on DataStore %s", m.Target, m.Message, m.Source))
	return r.recordMigration(ctx, p)
}

// unfreeze lifts the write freeze in the tenant.
func (r *Reconciler) unfreeze(ctx context.Context, p *pass) error {
	const cond = kamajiv1alpha1.ConditionDataStoreReady
	tc, err := r.migrationTenantClient(ctx, p)
	if err != nil {
		return err
	}
	if err := Freeze.Remove(ctx, tc); err != nil {
		return fail(cond, ReasonMigrating, fmt.Errorf("lifting the write freeze: %w", err))
	}
	// The apiserver drops a removed configuration asynchronously: the migration is not over while a
	// client's write would still be refused.
	enforced, err := Freeze.Enforced(ctx, tc, metav1.NamespaceDefault)
	if err != nil || enforced {
		e := failf(cond, ReasonMigrating, "waiting for the tenant apiserver to lift the write freeze")
		if err != nil {
			e = fail(cond, ReasonMigrating, fmt.Errorf("checking the write freeze is lifted: %w", err))
		}
		e.retryAfter = freezeRecheck
		return e
	}
	return nil
}

func (r *Reconciler) recordMigration(ctx context.Context, p *pass) error {
	if err := r.recordStatus(ctx, p); err != nil {
		return fail(kamajiv1alpha1.ConditionDataStoreReady, ReasonMigrating, fmt.Errorf("recording the migration's phase %s: %w", p.status.Storage.Migration.Phase, err))
	}
	return nil
}

// provisionCurrent provisions the slice the status names (the one the control plane runs on)
// and prepares the connection for the later steps.
func provisionCurrent(ctx context.Context, r *Reconciler, p *pass) error {
	if p.conn.Etcd != nil || p.conn.Kine != nil {
		return nil
	}
	return provision(ctx, r, p, p.status.Storage.DataStoreName)
}

type migrationSlices struct {
	source, target migration.Slice
	driver         string
}

// migrationTarget provisions the target slice and describes both sides of the copy.
func (r *Reconciler) migrationTarget(ctx context.Context, p *pass) (migrationSlices, error) {
	const cond = kamajiv1alpha1.ConditionDataStoreReady
	m := p.status.Storage.Migration
	ds, cfg, plugin, err := r.dataStorePlugin(ctx, cond, m.Target)
	if err != nil {
		return migrationSlices{}, err
	}
	t := Tenant(p.tcp)
	cctx, cancel := context.WithTimeout(ctx, r.pluginCallTimeout())
	conn, err := plugin.EnsureTenant(cctx, cfg, t)
	cancel()
	if err != nil {
		return migrationSlices{}, provisioningFailure(cond, ds, err)
	}
	_, srcCfg, srcPlugin, err := r.dataStorePlugin(ctx, cond, m.Source)
	if err != nil {
		return migrationSlices{}, err
	}
	return migrationSlices{
		source: migration.Slice{Plugin: srcPlugin, Config: srcCfg, Tenant: t, Layout: migration.LayoutOf(p.conn)},
		target: migration.Slice{Plugin: plugin, Config: cfg, Tenant: t, Layout: migration.LayoutOf(conn)},
		driver: ds.Spec.Driver,
	}, nil
}

// migrationTenantClient reaches the tenant apiserver with the admin kubeconfig.
func (r *Reconciler) migrationTenantClient(ctx context.Context, p *pass) (*tenant.Client, error) {
	const cond = kamajiv1alpha1.ConditionDataStoreReady
	if r.Tenants == nil {
		return nil, failf(cond, ReasonMigrating, "the manager has no tenant clients: cannot freeze the tenant")
	}
	kc, err := r.superAdminKubeconfig(ctx, p)
	if err != nil {
		return nil, err
	}
	tc, err := r.Tenants.Get(client.ObjectKeyFromObject(p.tcp), kc)
	if err != nil {
		return nil, fail(cond, ReasonMigrating, err)
	}
	if err := tc.Ready(ctx); err != nil {
		e := fail(cond, ReasonMigrating, fmt.Errorf("the tenant apiserver is not ready: %w", err))
		e.retryAfter = freezeRecheck
		return nil, e
	}
	return tc, nil
}

// superAdminKubeconfig is the tenant's super-admin kubeconfig, the manager's identity there.
func (r *Reconciler) superAdminKubeconfig(ctx context.Context, p *pass) ([]byte, error) {
	const cond = kamajiv1alpha1.ConditionDataStoreReady
	cur, err := r.readSecret(ctx, p, kubeconfig.AdminSecretName(p.tcp.Name))
	if err != nil {
		return nil, fail(cond, ReasonMigrating, err)
	}
	kc := cur.data[kubeconfig.KeySuperAdmin]
	if len(kc) == 0 {
		return nil, failf(cond, ReasonMigrating, "the admin kubeconfig Secret %s has no %s", kubeconfig.AdminSecretName(p.tcp.Name), kubeconfig.KeySuperAdmin)
	}
	return kc, nil
}

// migrationTimeout reads kamaji.clastix.io/migration-timeout (a Go duration, "10m").
func migrationTimeout(tcp *kamajiv1alpha1.TenantControlPlane) (time.Duration, error) {
	v, ok := tcp.Annotations[kamajiv1alpha1.MigrationTimeoutAnnotation]
	if !ok || v == "" {
		return DefaultMigrationTimeout, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("annotation %s: %q is not a positive duration such as 10m", kamajiv1alpha1.MigrationTimeoutAnnotation, v)
	}
	return d, nil
}

// sharedEndpoint returns an endpoint the source DataStore and the target have in common: two
// DataStore objects for one backend would give the tenant the same slice on both, and emptying
// or copying the "target" would touch the source.
func (r *Reconciler) sharedEndpoint(ctx context.Context, source *kamajiv1alpha1.DataStore, target string) string {
	ds := &kamajiv1alpha1.DataStore{}
	if source == nil || r.Client.Get(ctx, client.ObjectKey{Name: target}, ds) != nil {
		return ""
	}
	norm := func(e string) string {
		e = strings.ToLower(strings.TrimSpace(e))
		if i := strings.Index(e, "://"); i >= 0 {
			e = e[i+3:]
		}
		e = strings.TrimSuffix(e, "/")
		e = strings.Replace(e, "localhost:", "127.0.0.1:", 1)
		return e
	}
	for _, a := range source.Spec.Endpoints {
		for _, b := range ds.Spec.Endpoints {
			if norm(a) == norm(b) {
				return a
			}
		}
	}
	return ""
}

// podsLeaving counts the TCP's control-plane pods that are terminating or beyond the wanted
// replicas (pods are not cached: the core owns none; one uncached list per check).
func (r *Reconciler) podsLeaving(ctx context.Context, p *pass, replicas int32) (int, error) {
	var pods corev1.PodList
	if err := r.uncached().List(ctx, &pods, client.InNamespace(p.tcp.Namespace), client.MatchingLabels{kamajiv1alpha1.NameLabel: p.tcp.Name}); err != nil {
		return 0, err
	}
	leaving, running := 0, 0
	for _, pod := range pods.Items {
		if pod.DeletionTimestamp != nil {
			leaving++
		} else if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
			running++
		}
	}
	if extra := running - int(replicas); extra > 0 {
		leaving += extra
	}
	return leaving, nil
}
