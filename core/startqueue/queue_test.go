package startqueue

import (
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func key(name string) types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: name} }

// testQueue is a queue on a clock the test moves, whose timer the test fires (lapse), and which
// records whom it notified.
type testQueue struct {
	*Queue
	t        time.Time
	armed    []time.Duration
	notified []string
}

func newTestQueue(limit int, hold time.Duration) *testQueue {
	tq := &testQueue{t: time.Unix(1000, 0)}
	tq.Queue = New(limit, hold, func() time.Time { return tq.t })
	tq.afterFunc = func(d time.Duration, _ func()) *time.Timer {
		tq.armed = append(tq.armed, d)
		return time.NewTimer(time.Hour)
	}
	tq.SetNotify(func(k types.NamespacedName) { tq.notified = append(tq.notified, k.Name) })
	return tq
}

func (tq *testQueue) ask(t *testing.T, name string, wake, want bool) {
	t.Helper()
	if d := tq.Ask(key(name), wake); d.Start != want {
		t.Fatalf("Ask(%s) = %+v, want Start %v", name, d, want)
	}
}

func (tq *testQueue) told(t *testing.T, want ...string) {
	t.Helper()
	if !slices.Equal(tq.notified, want) {
		t.Errorf("notified %v, want %v", tq.notified, want)
	}
	tq.notified = nil
}

func TestNilQueueAdmitsEverything(t *testing.T) {
	q := New(0, 0, nil)
	if q != nil {
		t.Fatalf("New(0) = %v, want nil (no limit)", q)
	}
	for i := range 100 {
		if d := q.Ask(key(string(rune('a'+i%26))), false); !d.Start {
			t.Fatalf("nil queue refused start %d: %+v", i, d)
		}
	}
	q.Started(key("a"))
	q.Done(key("a"))
	q.SetNotify(func(types.NamespacedName) {})
	if s, w := q.Len(); s != 0 || w != 0 {
		t.Errorf("nil queue Len = %d, %d", s, w)
	}
}

// Starts go in the order they asked; a slot that frees goes to the first in line at once, and
// it is told.
func TestLimitAndOrder(t *testing.T) {
	q := newTestQueue(2, 30*time.Second)
	q.ask(t, "a", false, true)
	q.ask(t, "b", false, true)
	q.ask(t, "c", false, false)
	q.ask(t, "d", false, false)
	q.ask(t, "e", false, false)
	q.told(t)
	// Asking again changes nothing; a start admitted may still go.
	q.ask(t, "d", false, false)
	q.ask(t, "a", false, true)
	if s, w := q.Len(); s != 2 || w != 3 {
		t.Errorf("Len = %d starting, %d waiting; want 2, 3", s, w)
	}

	// a runs: c has its slot and is told; d still waits.
	q.Done(key("a"))
	q.told(t, "c")
	q.ask(t, "d", false, false)
	q.ask(t, "c", false, true)
	// A waiter that leaves (scaled to zero, deleted) frees no slot.
	q.Done(key("d"))
	q.told(t)
	q.Done(key("b"))
	q.told(t, "e")
	if s, w := q.Len(); s != 2 || w != 0 {
		t.Errorf("Len = %d starting, %d waiting; want 2, 0", s, w)
	}
}

func TestWakeGoesFirst(t *testing.T) {
	q := newTestQueue(1, 0)
	q.ask(t, "running", false, true)
	q.ask(t, "new1", false, false)
	q.ask(t, "new2", false, false)
	q.ask(t, "wake1", true, false)
	q.ask(t, "wake2", true, false)
	prev := "running"
	for _, next := range []string{"wake1", "wake2", "new1", "new2"} {
		q.Done(key(prev))
		q.told(t, next)
		prev = next
	}
}

// A start that never becomes available holds its slot for the hold time only: the timer gives
// it to the next in line then.
func TestHoldLapses(t *testing.T) {
	q := newTestQueue(1, 30*time.Second)
	q.ask(t, "stuck", false, true)
	q.t = q.t.Add(10 * time.Second)
	q.ask(t, "next", false, false)
	if len(q.armed) == 0 || q.armed[len(q.armed)-1] != 20*time.Second {
		t.Fatalf("timer armed for %v, want 20s (when stuck's hold ends)", q.armed)
	}
	q.t = q.t.Add(20 * time.Second)
	q.lapse()
	q.told(t, "next")
	q.ask(t, "next", false, true)
	// The lapsed start still runs: being seen under way does not count it anew.
	q.Started(key("stuck"))
	if s, _ := q.Len(); s != 1 {
		t.Errorf("%d starts counted, want 1 (next)", s)
	}
	// Asking again once its hold lapsed (its Deployment gone back to no replica) is a new start:
	// it waits, first of the starts in line.
	q.ask(t, "later", false, false)
	q.ask(t, "stuck", false, false)
	q.Done(key("next"))
	q.told(t, "stuck")
	q.ask(t, "stuck", false, true)
	q.ask(t, "later", false, false)
}

// A slot given to a TCP that does not come back for it (paused while it waited) lapses too.
func TestUnclaimedSlotLapses(t *testing.T) {
	q := newTestQueue(1, 30*time.Second)
	q.ask(t, "a", false, true)
	q.ask(t, "paused", false, false)
	q.ask(t, "b", false, false)
	q.Done(key("a"))
	q.told(t, "paused")
	q.t = q.t.Add(30 * time.Second)
	q.lapse()
	q.told(t, "b")
	q.ask(t, "b", false, true)
	// The paused TCP comes back: its slot went to b, so it waits its turn again, first of the
	// starts, behind a wake.
	q.ask(t, "c", false, false)
	q.ask(t, "waking", true, false)
	q.ask(t, "paused", false, false)
	q.Done(key("b"))
	q.told(t, "waking")
	q.ask(t, "waking", true, true)
	q.Done(key("waking"))
	q.told(t, "paused")
	q.ask(t, "paused", false, true)
}

// After a manager restart the starts under way are counted as soon as a pass sees them, even
// over the limit, and nobody new starts until they are done.
func TestStartedCountsOverLimit(t *testing.T) {
	q := newTestQueue(1, 0)
	q.Started(key("a"))
	q.Started(key("b"))
	q.ask(t, "c", false, false)
	q.Done(key("a"))
	q.told(t)
	q.ask(t, "c", false, false)
	q.Done(key("b"))
	q.told(t, "c")
	q.ask(t, "c", false, true)
}

func TestMessage(t *testing.T) {
	want := "waiting its turn to start: at most 2 control planes start at once (manager setting max-starting-control-planes)"
	if got := (Decision{Limit: 2}).Message(); got != want {
		t.Errorf("Message = %q\nwant %q", got, want)
	}
}

// The real timer gives a lapsed slot to the next in line.
func TestTimer(t *testing.T) {
	q := New(1, 50*time.Millisecond, nil)
	told := make(chan types.NamespacedName, 1)
	q.SetNotify(func(k types.NamespacedName) { told <- k })
	q.Ask(key("stuck"), false)
	q.Ask(key("next"), false)
	select {
	case k := <-told:
		if k != key("next") {
			t.Errorf("told %v, want next", k)
		}
	case <-time.After(time.Minute):
		t.Fatal("the lapse of stuck's hold did not give next its slot")
	}
}
