// Package startqueue lets at most a set number of control planes start at once, the others
// waiting their turn in the order they asked.
//
// Why: a kube-apiserver's start is CPU-bound (3.5-4 CPU-seconds on the local plane's 2 cores).
// Ten started together share the CPU and all answer at about the same late time; started a few
// at a time, the first answer after one start's time and the last no later than before. A
// waiting start costs nothing: its Deployment exists with no replica.
//
// When a slot frees, the queue gives it to the first in line at once and notifies it (the
// controller enqueues its TCP): a waiting start is never polled. A start counts for at most the
// hold time, whether it became available or not, and whether its TCP came back for its slot or
// not: a control plane that never becomes available (an image that cannot be pulled, a crash
// loop), or a TCP paused while it waited, keeps the others waiting that long at most.
//
// The queue lives in the leading manager's memory. A start under way when a manager takes over
// (a Deployment scaled up with no available replica yet) is counted as soon as a pass sees it,
// even over the limit.
package startqueue

import (
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// DefaultHold is how long a start holds its slot at most: several times a start on a busy
// 2-core machine (3-8 s).
const DefaultHold = 30 * time.Second

// Queue admits starts. A nil *Queue admits every start at once (no limit).
type Queue struct {
	limit int
	hold  time.Duration
	now   func() time.Time
	// afterFunc arms the timer that gives the slot of a lapsing start to the next in line
	// (time.AfterFunc; tests call lapse themselves).
	afterFunc func(time.Duration, func()) *time.Timer

	mu sync.Mutex
	// starting: the starts admitted or found under way, since when (each counts until
	// since+hold).
	starting map[types.NamespacedName]time.Time
	// waiting: the starts in line, wakes first, then in the order they first asked.
	waiting []waiter
	timer   *time.Timer
	notify  func(types.NamespacedName)
}

type waiter struct {
	key  types.NamespacedName
	wake bool
}

// New returns a queue admitting at most limit starts at once, each counted for at most hold
// (DefaultHold when 0); limit < 1 returns nil: no limit.
func New(limit int, hold time.Duration, now func() time.Time) *Queue {
	if limit < 1 {
		return nil
	}
	if hold <= 0 {
		hold = DefaultHold
	}
	if now == nil {
		now = time.Now
	}
	return &Queue{limit: limit, hold: hold, now: now, afterFunc: time.AfterFunc, starting: map[types.NamespacedName]time.Time{}}
}

// SetNotify sets what is called, outside the queue's lock, with each waiting start given a
// slot (the controller enqueues its TCP).
func (q *Queue) SetNotify(f func(types.NamespacedName)) {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.notify = f
}

// Decision is the queue's answer to a start.
type Decision struct {
	// Start: the start may go ahead; otherwise it waits, and its TCP is notified when it may.
	Start bool
	// Limit is how many may start at once.
	Limit int
}

// Message says why a start waits, for a condition. It names no place in line or count, which
// change while it waits: a waiting TCP's passes write no status.
func (d Decision) Message() string {
	return fmt.Sprintf("waiting its turn to start: at most %d control planes start at once (manager setting max-starting-control-planes)", d.Limit)
}

// Ask asks to start key's control plane, which is not running and has not begun to start. A
// wake (a connection waits for it) goes before the first starts in line. A TCP given a slot
// starts when it asks within the hold; asking later, it waits again, first of its class.
func (q *Queue) Ask(key types.NamespacedName, wake bool) Decision {
	if q == nil {
		return Decision{Start: true}
	}
	q.mu.Lock()
	if since, ok := q.starting[key]; ok {
		if q.now().Before(since.Add(q.hold)) {
			q.mu.Unlock()
			return Decision{Start: true, Limit: q.limit}
		}
		// Its hold lapsed before it started (a slot it did not come for, or a start that went
		// away without a Done): a new start, which goes first in its class, its turn having
		// come once already.
		delete(q.starting, key)
		q.enqueueFirst(waiter{key: key, wake: wake})
	} else if q.index(key) < 0 {
		q.enqueue(waiter{key: key, wake: wake})
	}
	admitted := q.admit()
	_, start := q.starting[key]
	notify := q.notify
	q.mu.Unlock()
	q.tell(notify, admitted, key)
	return Decision{Start: start, Limit: q.limit}
}

// Started records a start under way (its Deployment scaled up, no replica available yet): it
// holds a slot, even over the limit, from the first time it is seen.
func (q *Queue) Started(key types.NamespacedName) {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.starting[key]; !ok {
		q.starting[key] = q.now()
		q.remove(key)
		q.arm()
	}
}

// Done records that key's control plane is not starting: it runs (a replica is available), it
// is scaled to zero, or its TCP is gone. Its slot or its place in line goes to the next in line.
func (q *Queue) Done(key types.NamespacedName) {
	if q == nil {
		return
	}
	q.mu.Lock()
	_, held := q.starting[key]
	delete(q.starting, key)
	waited := q.remove(key)
	var admitted []types.NamespacedName
	if held || waited {
		admitted = q.admit()
	}
	notify := q.notify
	q.mu.Unlock()
	q.tell(notify, admitted, types.NamespacedName{})
}

// lapse gives the slots of the starts whose hold ended to the next in line.
func (q *Queue) lapse() {
	q.mu.Lock()
	admitted := q.admit()
	notify := q.notify
	q.mu.Unlock()
	q.tell(notify, admitted, types.NamespacedName{})
}

// Len returns how many starts hold a slot and how many wait (the metrics).
func (q *Queue) Len() (starting, waiting int) {
	if q == nil {
		return 0, 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	starting, _ = q.counted(q.now())
	return starting, len(q.waiting)
}

// admit gives the free slots to the first in line, and arms the timer for the next lapse while
// some wait. It returns those given a slot.
func (q *Queue) admit() []types.NamespacedName {
	now := q.now()
	counted, _ := q.counted(now)
	var admitted []types.NamespacedName
	for ; counted < q.limit && len(q.waiting) > 0; counted++ {
		k := q.waiting[0].key
		q.waiting = q.waiting[1:]
		q.starting[k] = now
		admitted = append(admitted, k)
	}
	q.arm()
	return admitted
}

// arm sets the timer to the first lapse of a counted start while some wait.
func (q *Queue) arm() {
	if q.timer != nil {
		q.timer.Stop()
		q.timer = nil
	}
	if len(q.waiting) == 0 {
		return
	}
	if _, first := q.counted(q.now()); first > 0 {
		q.timer = q.afterFunc(first, q.lapse)
	}
}

// tell notifies those given a slot, but the one asking (it knows).
func (q *Queue) tell(notify func(types.NamespacedName), admitted []types.NamespacedName, asking types.NamespacedName) {
	if notify == nil {
		return
	}
	for _, k := range admitted {
		if k != asking {
			notify(k)
		}
	}
}

// counted returns how many starts hold a slot at now, and how long until the first of them
// lapses (0: none holds one).
func (q *Queue) counted(now time.Time) (int, time.Duration) {
	n, first := 0, time.Duration(0)
	for _, since := range q.starting {
		left := since.Add(q.hold).Sub(now)
		if left <= 0 {
			continue
		}
		n++
		if first == 0 || left < first {
			first = left
		}
	}
	return n, first
}

func (q *Queue) index(key types.NamespacedName) int {
	for i, w := range q.waiting {
		if w.key == key {
			return i
		}
	}
	return -1
}

// remove takes key out of the line, if it is in it.
func (q *Queue) remove(key types.NamespacedName) bool {
	i := q.index(key)
	if i < 0 {
		return false
	}
	q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
	return true
}

// enqueue puts w in line: a wake after the wakes already waiting, before the first starts.
func (q *Queue) enqueue(w waiter) {
	i := len(q.waiting)
	if w.wake {
		i = q.wakes()
	}
	q.insert(i, w)
}

// enqueueFirst puts w first in its class: a wake first in line, a start after the wakes.
func (q *Queue) enqueueFirst(w waiter) {
	i := 0
	if !w.wake {
		i = q.wakes()
	}
	q.insert(i, w)
}

// wakes counts the wakes in line, which are its first.
func (q *Queue) wakes() int {
	i := 0
	for i < len(q.waiting) && q.waiting[i].wake {
		i++
	}
	return i
}

func (q *Queue) insert(i int, w waiter) {
	q.waiting = append(q.waiting, waiter{})
	copy(q.waiting[i+1:], q.waiting[i:])
	q.waiting[i] = w
}
