package sleep

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Phase is where a TCP that may sleep stands.
type Phase string

const (
	// Awake: the apiserver runs and its Service selects its pods.
	Awake Phase = "Awake"
	// Asleep: scaled to zero; the Service leads to the manager, which wakes it.
	Asleep Phase = "Asleep"
	// Waking: scaling back up; the Service still leads to the manager, which holds the
	// connections until an apiserver pod is ready.
	Waking Phase = "Waking"
)

// Reasons of the Sleeping condition: True with ReasonIdle, False with the others.
const (
	ReasonIdle        = "Idle"
	ReasonWaking      = "Waking"
	ReasonAwake       = "Awake"
	ReasonUnavailable = "SleepUnavailable"
)

// AuditBatchWait is the longest a tenant apiserver holds an audit event before posting it
// (--audit-webhook-batch-max-wait): the activity record lags the requests by up to this.
const AuditBatchWait = 5 * time.Second

// Input is what the decision reads: the TCP's previous Sleeping condition, its activity Lease
// and whether sleeping is allowed now.
type Input struct {
	SleepAfter time.Duration
	Now        time.Time
	// LastActivity is the activity Lease's renewTime (zero: none yet).
	LastActivity time.Time
	// Previous is the Sleeping condition the last pass wrote (nil: none).
	Previous *metav1.Condition
	// CanSleep: an awake TCP may go to sleep now (it is Ready, has replicas, is not migrating or
	// rotating, and its activity reaches the manager).
	CanSleep bool
	// MustWake: wake a sleeping TCP whatever its activity (a migration must run it).
	MustWake bool
}

// Decision is the phase for this pass and, for an awake TCP, when it is due to sleep.
type Decision struct {
	Phase Phase
	// SleepIn is how long until an awake TCP falls asleep if no request comes (0: not
	// scheduled).
	SleepIn time.Duration
}

// Decide is the sleep policy, a pure function of its input.
//
// A sleeping TCP wakes as soon as an activity is recorded after it fell asleep (the wake
// server records one for each connection it holds). A waking TCP is awake once its pods are
// available, which the caller sees after it applies the Deployment (see Woken). An awake TCP
// sleeps once no activity has been recorded for SleepAfter, counted from the last activity or
// from when it last became awake, whichever is later, plus the lag of the record (the audit
// batch and the Lease write interval), so that a request is never outrun by the record of it.
func Decide(in Input) Decision {
	prev := in.Previous
	switch {
	case prev != nil && prev.Status == metav1.ConditionTrue:
		if in.MustWake || in.LastActivity.After(prev.LastTransitionTime.Time) {
			return Decision{Phase: Waking}
		}
		return Decision{Phase: Asleep}
	case prev != nil && prev.Reason == ReasonWaking:
		return Decision{Phase: Waking}
	}
	if !in.CanSleep {
		return Decision{Phase: Awake}
	}
	since := in.Now
	if prev != nil {
		since = prev.LastTransitionTime.Time
	}
	if in.LastActivity.After(since) {
		since = in.LastActivity
	}
	due := since.Add(in.SleepAfter + TouchInterval(in.SleepAfter) + AuditBatchWait)
	if !in.Now.Before(due) {
		return Decision{Phase: Asleep}
	}
	return Decision{Phase: Awake, SleepIn: due.Sub(in.Now)}
}
