package sleep

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func cond(status metav1.ConditionStatus, reason string, at time.Time) *metav1.Condition {
	return &metav1.Condition{Type: "Sleeping", Status: status, Reason: reason, LastTransitionTime: metav1.NewTime(at)}
}

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	after := time.Minute
	lag := TouchInterval(after) + AuditBatchWait // 20s
	cases := []struct {
		name string
		in   Input
		want Decision
	}{
		{"first pass: the idle clock starts now", Input{Now: t0, CanSleep: true}, Decision{Phase: Awake, SleepIn: after + lag}},
		{"awake, idle since the condition was set", Input{Now: t0.Add(after + lag), Previous: cond(metav1.ConditionFalse, ReasonAwake, t0), CanSleep: true}, Decision{Phase: Asleep}},
		{"awake, a recent activity postpones", Input{Now: t0.Add(after + lag), LastActivity: t0.Add(30 * time.Second), Previous: cond(metav1.ConditionFalse, ReasonAwake, t0), CanSleep: true}, Decision{Phase: Awake, SleepIn: 30 * time.Second}},
		{"awake but not allowed to sleep", Input{Now: t0.Add(time.Hour), Previous: cond(metav1.ConditionFalse, ReasonAwake, t0)}, Decision{Phase: Awake}},
		{"unavailable: never sleeps", Input{Now: t0.Add(time.Hour), Previous: cond(metav1.ConditionFalse, ReasonUnavailable, t0)}, Decision{Phase: Awake}},
		{"asleep, no activity since", Input{Now: t0.Add(time.Hour), LastActivity: t0.Add(-time.Second), Previous: cond(metav1.ConditionTrue, ReasonIdle, t0), CanSleep: true}, Decision{Phase: Asleep}},
		{"asleep, a connection came", Input{Now: t0.Add(time.Hour), LastActivity: t0.Add(time.Minute), Previous: cond(metav1.ConditionTrue, ReasonIdle, t0)}, Decision{Phase: Waking}},
		{"asleep, a migration must run it", Input{Now: t0.Add(time.Hour), Previous: cond(metav1.ConditionTrue, ReasonIdle, t0), MustWake: true}, Decision{Phase: Waking}},
		{"waking stays waking until the pods are available", Input{Now: t0.Add(time.Hour), Previous: cond(metav1.ConditionFalse, ReasonWaking, t0), CanSleep: true}, Decision{Phase: Waking}},
	}
	for _, c := range cases {
		c.in.SleepAfter = after
		if got := Decide(c.in); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestTouchInterval(t *testing.T) {
	for after, want := range map[time.Duration]time.Duration{30 * time.Second: 7500 * time.Millisecond, 10 * time.Second: 5 * time.Second, time.Hour: 2 * time.Minute} {
		if got := TouchInterval(after); got != want {
			t.Errorf("TouchInterval(%s) = %s, want %s", after, got, want)
		}
	}
}
