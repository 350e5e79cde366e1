package tenantcontrolplane

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/conditionevents"
	"github.com/openhcp/kamaji/core/metrics"
	"github.com/openhcp/kamaji/core/pluginhost"
)

// inProgress tells the condition reasons that are steps of a TCP's life, not failures: a
// condition False for one of them is recorded as a Normal Event. (ControlPlaneAvailable's
// reason is the version status, whose values are among them.)
func inProgress(reason string) bool { return progressReasons[reason] }

var progressReasons = map[string]bool{
	ReasonProvisioning: true, ReasonUpgrading: true, ReasonSleeping: true, ReasonRotatingCA: true,
	ReasonMigrating: true, ReasonWaitingForControlPlane: true, ReasonEndpointPending: true,
	pluginhost.ReasonStarting: true, // ReasonTenantSleeping is ReasonSleeping
}

// recordTransitions records one Event per condition that changed between the status the pass
// read and the one it wrote (see conditionevents), and one for a change of Kamaji's version
// status that the Ready condition does not show (Ready and WriteLimited share its reason).
func (r *Reconciler) recordTransitions(p *pass) {
	if r.Recorder == nil {
		return
	}
	before, now := p.tcp.Status.Conditions, p.status.Conditions
	conditionevents.Record(r.Recorder, p.tcp, before, now, inProgress)
	oldState, newState := versionState(p.tcp.Status), versionState(p.status)
	if oldState == newState || newState == "" {
		return
	}
	readyChanged := false
	for _, c := range conditionevents.Changed(before, now) {
		readyChanged = readyChanged || c.Type == kamajiv1alpha1.ConditionReady
	}
	if readyChanged {
		return
	}
	msg := "status " + newState
	if c := meta.FindStatusCondition(now, kamajiv1alpha1.ConditionReady); c != nil && c.Message != "" {
		msg += ": " + c.Message
	}
	eventType := corev1.EventTypeNormal
	if newState == string(kamajiv1alpha1.VersionNotReady) {
		eventType = corev1.EventTypeWarning
	}
	r.event(p.tcp, eventType, newState, "Status", conditionevents.Truncate(conditionevents.Scrub(msg), 1024))
}

func versionState(st kamajiv1alpha1.TenantControlPlaneStatus) string {
	if s := st.Kubernetes.Version.Status; s != nil {
		return string(*s)
	}
	return ""
}

// runStep runs one step and records its duration in kamaji_handler_time_seconds.
func (r *Reconciler) runStep(ctx context.Context, s step, p *pass) error {
	start := time.Now()
	err := s.run(ctx, r, p)
	metrics.ObserveStep(s.name, time.Since(start), err)
	return err
}
