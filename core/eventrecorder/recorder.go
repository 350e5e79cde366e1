// Package eventrecorder writes the manager's Kubernetes Events (events.k8s.io/v1) from a
// bounded queue, with no memory of the Events it wrote.
//
// It stands in for client-go's events broadcaster, which keeps a copy of every Event it
// recorded for six minutes, to fold a repeat of the same Event into a series. The core's Events
// regard an object at its resourceVersion (as client-go's reference does), which changes with
// every write, so no two are ever the same and no series ever formed: the copies were only
// memory, about 14 MB while 1,000 TCPs were provisioned (nine Events each). The broadcaster also
// ran a goroutine per Event; here a few writers drain one queue, and what does not fit in it is
// dropped and counted (kamaji_events_dropped_total) rather than held.
package eventrecorder

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/reference"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openhcp/kamaji/core/metrics"
)

// Defaults of Options.
const (
	DefaultQueue   = 1000
	DefaultWriters = 4
	// DefaultRetry is the pause between two attempts at an Event the apiserver could not take
	// (client-go's: 10 s, jittered), DefaultAttempts how many are made in all (client-go's: 12).
	DefaultRetry    = 10 * time.Second
	DefaultAttempts = 12
)

// Options of a Recorder. Controller is required; the rest have defaults.
type Options struct {
	// Controller is the Events' reportingController.
	Controller string
	// Instance is their reportingInstance (default: "<controller>-<hostname>", as client-go's).
	Instance string
	// Queue is how many Events may wait to be written; one more is dropped.
	Queue int
	// Writers is how many Events are written at once.
	Writers int
	// Retry and Attempts: how an Event the apiserver could not take (unreachable, overloaded,
	// timed out) is tried again.
	Retry    time.Duration
	Attempts int
	Log      logr.Logger
	Now      func() time.Time
}

// Recorder is an events.EventRecorder whose Events are written by Start's writers.
type Recorder struct {
	client client.Client
	scheme *runtime.Scheme
	o      Options
	queue  chan *eventsv1.Event

	mu      sync.Mutex
	running bool
}

// New returns a Recorder writing with c (whose scheme resolves the kinds of the objects the
// Events regard). Nothing is written until Start runs; Events recorded before wait in the queue.
func New(c client.Client, o Options) *Recorder {
	if o.Instance == "" {
		host, _ := os.Hostname()
		o.Instance = o.Controller + "-" + host
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.Writers <= 0 {
		o.Writers = DefaultWriters
	}
	if o.Retry <= 0 {
		o.Retry = DefaultRetry
	}
	if o.Attempts <= 0 {
		o.Attempts = DefaultAttempts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Recorder{client: c, scheme: c.Scheme(), o: o, queue: make(chan *eventsv1.Event, o.Queue)}
}

// Eventf queues an Event regarding an object (and optionally a related one). It never blocks:
// when the queue is full the Event is dropped and counted.
func (r *Recorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	ev, err := r.event(regarding, related, eventtype, reason, action, fmt.Sprintf(note, args...))
	if err != nil {
		r.o.Log.Error(err, "event not recorded", "reason", reason, "action", action)
		return
	}
	select {
	case r.queue <- ev:
	default:
		metrics.EventDropped()
		r.o.Log.V(1).Info("event dropped: the queue is full", "regarding", ev.Regarding.Name, "reason", reason)
	}
}

// event builds the Event as client-go's recorder does: named after the regarding object and
// the time, in its namespace ("default" for a cluster-scoped object).
func (r *Recorder) event(regarding, related runtime.Object, eventtype, reason, action, note string) (*eventsv1.Event, error) {
	if eventtype != corev1.EventTypeNormal && eventtype != corev1.EventTypeWarning {
		return nil, fmt.Errorf("event type %q is neither Normal nor Warning", eventtype)
	}
	ref, err := reference.GetReference(r.scheme, regarding)
	if err != nil {
		return nil, fmt.Errorf("referring to the regarding object: %w", err)
	}
	var relatedRef *corev1.ObjectReference
	if related != nil {
		if relatedRef, err = reference.GetReference(r.scheme, related); err != nil {
			return nil, fmt.Errorf("referring to the related object: %w", err)
		}
	}
	now := r.o.Now()
	namespace := ref.Namespace
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	return &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", ref.Name, now.UnixNano()), Namespace: namespace},
		EventTime:           metav1.NewMicroTime(now),
		ReportingController: r.o.Controller,
		ReportingInstance:   r.o.Instance,
		Action:              action,
		Reason:              reason,
		Regarding:           *ref,
		Related:             relatedRef,
		Note:                note,
		Type:                eventtype,
	}, nil
}

// Start writes queued Events until ctx ends; what is still queued then is not written.
func (r *Recorder) Start(ctx context.Context) error {
	r.mu.Lock()
	if r.running {
		r.mu.Unlock()
		return fmt.Errorf("eventrecorder: already started")
	}
	r.running = true
	r.mu.Unlock()
	var wg sync.WaitGroup
	for range r.o.Writers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case ev := <-r.queue:
					r.write(ctx, ev)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// NeedLeaderElection is false: every replica records the Events of what it does.
func (r *Recorder) NeedLeaderElection() bool { return false }

// write creates the Event. Events are records with generated names, created once and never
// changed, so they are not declared with server-side apply like the objects the core owns.
func (r *Recorder) write(ctx context.Context, ev *eventsv1.Event) {
	for attempt := 1; ; attempt++ {
		err := r.client.Create(ctx, ev.DeepCopy())
		if err == nil || apierrors.IsAlreadyExists(err) {
			if err == nil {
				r.o.Log.V(1).Info(ev.Note, "type", ev.Type, "object", ev.Regarding, "reason", ev.Reason)
			}
			return
		}
		if !retriable(err) || attempt >= r.o.Attempts {
			metrics.EventDropped()
			r.o.Log.Error(err, "event not written", "regarding", ev.Regarding.Name, "reason", ev.Reason, "attempts", attempt)
			return
		}
		// Jittered by a quarter either way, so that replicas do not retry in step.
		pause := time.Duration(float64(r.o.Retry) * (0.75 + rand.Float64()/2))
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
	}
}

// retriable: the apiserver may take the Event later. A refused Event (invalid, forbidden, its
// namespace gone) never will.
func retriable(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return true // not an answer of the apiserver: it was not reached
	}
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || apierrors.IsUnexpectedServerError(err)
}
