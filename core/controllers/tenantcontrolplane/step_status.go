package tenantcontrolplane

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/sleep"
)

// Reasons of the Ready condition.
const (
	ReasonReady        = "Ready"
	ReasonProvisioning = "Provisioning"
	ReasonUpgrading    = "Upgrading"
	ReasonSleeping     = "Sleeping"
	ReasonRotatingCA   = "CertificateAuthorityRotating"
	ReasonNotAvailable = "ControlPlaneNotAvailable"
	ReasonStepFailed   = "ReconcileFailed"
)

// computeStatus derives the Kamaji version status and the Ready condition from what the pass
// saw and the errors of its steps (the first one is the cause the Ready condition names; each
// sets its own condition False). It is a pure function of the pass, so every transition is
// unit-tested.
func computeStatus(p *pass, errs ...error) {
	setVersionCondition(p)
	var stepErr error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if stepErr == nil {
			stepErr = err
		}
		if se, ok := asStepError(err); ok {
			p.setCondition(se.condition, metav1.ConditionFalse, se.reason, se.err.Error())
		} else {
			p.setCondition(kamajiv1alpha1.ConditionReady, metav1.ConditionFalse, ReasonStepFailed, err.Error())
		}
	}

	installed := p.status.Kubernetes.Version.Version
	wanted := p.tcp.Spec.Kubernetes.Version
	dep := p.status.Kubernetes.Deployment
	replicas := p.replicas()
	complete := stepErr == nil && p.deploymentObserved && RolloutComplete(dep, replicas)

	// A CA rotation lasts until the pods run with the reissued certificates.
	prev := p.tcp.Status.Kubernetes.Version.Status
	rotating := p.caRotating || (prev != nil && *prev == kamajiv1alpha1.VersionCertificateAuthorityRotating && !complete && stepErr == nil)

	var state kamajiv1alpha1.KubernetesVersionStatus
	reason, message := ReasonNotAvailable, "the control plane is not available"
	switch {
	case rotating:
		state, reason, message = kamajiv1alpha1.VersionCertificateAuthorityRotating, ReasonRotatingCA, "the certificate authority is being rotated"
	case stepErr != nil && installed == "":
		state, reason, message = kamajiv1alpha1.VersionProvisioning, ReasonProvisioning, stepErr.Error()
	case stepErr != nil:
		state, reason, message = kamajiv1alpha1.VersionNotReady, ReasonStepFailed, stepErr.Error()
	case replicas == 0 && complete && p.sleep.phase == sleep.Asleep:
		state, reason, message = kamajiv1alpha1.VersionSleeping, ReasonSleeping, "asleep after a time without requests; the next connection wakes it"
	case replicas == 0 && complete:
		state, reason, message = kamajiv1alpha1.VersionSleeping, ReasonSleeping, "scaled to zero replicas"
	case complete:
		installed = wanted
		state, reason, message = kamajiv1alpha1.VersionReady, ReasonReady, fmt.Sprintf("%d/%d control plane replicas run %s", dep.AvailableReplicas, replicas, wanted)
		if p.tcp.Spec.WritePermissions.HasAnyLimitation() {
			state = kamajiv1alpha1.VersionWriteLimited
		}
	case installed == "":
		state, reason, message = kamajiv1alpha1.VersionProvisioning, ReasonProvisioning, "waiting for the control plane pods"
	case installed != wanted:
		state, reason, message = kamajiv1alpha1.VersionUpgrading, ReasonUpgrading, fmt.Sprintf("rolling out %s (installed %s)", wanted, installed)
	default:
		state = kamajiv1alpha1.VersionNotReady
	}
	if p.podTrouble != "" && stepErr == nil && !complete && !rotating {
		message += ": " + p.podTrouble
	}
	if p.startWaiting != "" && stepErr == nil && !complete {
		message = p.startWaiting
	}
	if migrating(p.status.Storage) {
		state, reason = kamajiv1alpha1.VersionMigrating, ReasonMigrating
		if c := meta.FindStatusCondition(p.status.Conditions, kamajiv1alpha1.ConditionDataStoreReady); c != nil {
			message = c.Message
		}
	}
	p.status.Kubernetes.Version = kamajiv1alpha1.KubernetesVersion{Version: installed, Status: &state}

	available := metav1.ConditionFalse
	if complete && replicas > 0 {
		available = metav1.ConditionTrue
	}
	switch {
	case stepErr == nil:
		p.setCondition(kamajiv1alpha1.ConditionControlPlaneAvailable, available, string(state), message)
	case p.deploymentApplied && !migrating(p.status.Storage):
		// Another step failed (the datastore) but the Deployment converged: say how it runs.
		// (A migration's waits leave the condition as the migration's passes set it.)
		rolled := p.deploymentObserved && RolloutComplete(dep, replicas)
		available, reason := metav1.ConditionFalse, ReasonNotAvailable
		if rolled && replicas > 0 {
			available, reason = metav1.ConditionTrue, ReasonReady
		}
		p.setCondition(kamajiv1alpha1.ConditionControlPlaneAvailable, available, reason,
			fmt.Sprintf("%d/%d control-plane replicas run the current template, %d available", dep.UpdatedReplicas, replicas, dep.AvailableReplicas))
	}
	ready := metav1.ConditionFalse
	if state == kamajiv1alpha1.VersionReady || state == kamajiv1alpha1.VersionWriteLimited || state == kamajiv1alpha1.VersionSleeping {
		ready = metav1.ConditionTrue
	}
	p.setCondition(kamajiv1alpha1.ConditionReady, ready, reason, message)
}

// RolloutComplete tells whether the control plane Deployment runs the current template on
// every wanted replica (and nothing else).
func RolloutComplete(dep kamajiv1alpha1.KubernetesDeploymentStatus, replicas int32) bool {
	if dep.Name == "" {
		return false
	}
	for _, c := range dep.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return false
		}
	}
	return dep.UpdatedReplicas == replicas && dep.Replicas == replicas && dep.AvailableReplicas == replicas && dep.UnavailableReplicas == 0
}
