package eventrecorder_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/openhcp/kamaji/core/eventrecorder"
	"github.com/openhcp/kamaji/core/metrics/metricstest"
	"github.com/openhcp/kamaji/core/testenv"
)

var plane *testenv.Plane

func TestMain(m *testing.M) { os.Exit(testenv.RunWithPlane(m, &plane)) }

func newClient(t *testing.T, cfg *rest.Config) client.Client {
	t.Helper()
	c, err := client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// start runs the recorder's writers for the rest of the test.
func start(t *testing.T, r *eventrecorder.Recorder) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
}

func eventually(t *testing.T, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, time.Minute, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// eventsRegarding lists the Events regarding the named object, in a namespace.
func eventsRegarding(ctx context.Context, c client.Client, namespace, name string) ([]eventsv1.Event, error) {
	var list eventsv1.EventList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out, nil
}

func dropped(t *testing.T) float64 {
	t.Helper()
	families, err := metricstest.Gather(ctrlmetrics.Registry)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := families.Value("kamaji_events_dropped_total", nil)
	if !ok {
		t.Fatal("kamaji_events_dropped_total is not registered")
	}
	return v
}

// What a user sees with kubectl: the Event on the object, with the reason, action, type and
// note given, from the reporting controller; a cluster-scoped object's Events are in default.
func TestEventsReachTheAPI(t *testing.T) {
	c := newClient(t, plane.Config)
	ctx := t.Context()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "regarded", Namespace: "default"}}
	if err := c.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cluster-scoped"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	r := eventrecorder.New(c, eventrecorder.Options{Controller: "kamaji", Instance: "kamaji-test", Log: logr.Discard()})
	start(t, r)
	r.Eventf(cm, nil, corev1.EventTypeWarning, "ProvisioningFailed", "DataStoreReady", "DataStoreReady is %s: %s", "False", "slice refused")
	r.Eventf(ns, cm, corev1.EventTypeNormal, "Ready", "Ready", "Ready is True")

	var got []eventsv1.Event
	eventually(t, "the ConfigMap's Event", func(ctx context.Context) (bool, error) {
		var err error
		got, err = eventsRegarding(ctx, c, "default", "regarded")
		return len(got) == 1, err
	})
	e := got[0]
	if e.Type != corev1.EventTypeWarning || e.Reason != "ProvisioningFailed" || e.Action != "DataStoreReady" ||
		e.Note != "DataStoreReady is False: slice refused" || e.ReportingController != "kamaji" || e.ReportingInstance != "kamaji-test" {
		t.Errorf("the Event says %+v", e)
	}
	if e.Regarding.Kind != "ConfigMap" || e.Regarding.UID != cm.UID || e.Regarding.Namespace != "default" || e.EventTime.IsZero() {
		t.Errorf("the Event regards %+v at %v", e.Regarding, e.EventTime)
	}

	eventually(t, "the Namespace's Event, in default", func(ctx context.Context) (bool, error) {
		var err error
		got, err = eventsRegarding(ctx, c, "default", "cluster-scoped")
		return len(got) == 1, err
	})
	if e := got[0]; e.Regarding.Kind != "Namespace" || e.Related == nil || e.Related.Name != "regarded" || e.Type != corev1.EventTypeNormal {
		t.Errorf("the Namespace's Event is %+v", e)
	}
}

// An Event of an unknown type is refused at once; the next one is written.
func TestEventTypeOtherThanNormalOrWarningIsNotQueued(t *testing.T) {
	c := newClient(t, plane.Config)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "typed", Namespace: "default", UID: "u-typed"}}
	r := eventrecorder.New(c, eventrecorder.Options{Controller: "kamaji", Writers: 1, Log: logr.Discard()})
	r.Eventf(cm, nil, "Info", "Odd", "Test", "not an event type")
	r.Eventf(cm, nil, corev1.EventTypeNormal, "Fine", "Test", "a normal one")
	start(t, r)
	var got []eventsv1.Event
	eventually(t, "the Normal Event", func(ctx context.Context) (bool, error) {
		var err error
		got, err = eventsRegarding(ctx, c, "default", "typed")
		return len(got) > 0, err
	})
	// One writer takes the queue in order: had the odd one been queued, it came first.
	if len(got) != 1 || got[0].Reason != "Fine" {
		t.Errorf("Events written: %+v", got)
	}
}

// The queue is bounded: what does not fit is dropped and counted, not held; what fits is
// written once the writers run.
func TestFullQueueDropsAndCounts(t *testing.T) {
	c := newClient(t, plane.Config)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "busy", Namespace: "default", UID: "u-busy"}}
	r := eventrecorder.New(c, eventrecorder.Options{Controller: "kamaji", Queue: 2, Log: logr.Discard()})
	before := dropped(t)
	for i := range 3 {
		r.Eventf(cm, nil, corev1.EventTypeNormal, fmt.Sprintf("Step%d", i), "Test", "step %d", i)
	}
	if d := dropped(t) - before; d != 1 {
		t.Fatalf("%v Events counted as dropped, want 1", d)
	}
	start(t, r)
	eventually(t, "the two queued Events", func(ctx context.Context) (bool, error) {
		got, err := eventsRegarding(ctx, c, "default", "busy")
		return len(got) == 2, err
	})
}

// An Event the apiserver refuses (its namespace does not exist) is dropped at once; one that
// cannot reach the apiserver is tried Attempts times, then dropped. Neither blocks Eventf.
func TestUnwritableEventsAreDropped(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		c := newClient(t, plane.Config)
		r := eventrecorder.New(c, eventrecorder.Options{Controller: "kamaji", Log: logr.Discard()})
		before := dropped(t)
		start(t, r)
		r.Eventf(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "no-such-namespace", UID: "u-x"}},
			nil, corev1.EventTypeNormal, "Lost", "Test", "in a namespace that does not exist")
		eventually(t, "the refused Event to be counted", func(context.Context) (bool, error) {
			return dropped(t)-before == 1, nil
		})
	})
	t.Run("unreachable", func(t *testing.T) {
		port, err := testenv.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		cfg := rest.CopyConfig(plane.Config)
		cfg.Host = fmt.Sprintf("https://127.0.0.1:%d", port) // nothing listens there
		c := newClient(t, cfg)
		r := eventrecorder.New(c, eventrecorder.Options{Controller: "kamaji", Retry: time.Millisecond, Attempts: 3, Log: logr.Discard()})
		before := dropped(t)
		start(t, r)
		r.Eventf(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "y", Namespace: "default", UID: "u-y"}},
			nil, corev1.EventTypeNormal, "Unreachable", "Test", "nowhere to go")
		eventually(t, "the unreachable Event to be counted", func(context.Context) (bool, error) {
			return dropped(t)-before == 1, nil
		})
	})
}
