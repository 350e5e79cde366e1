package node

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/record"
)

// probeServer answers 500 to its first failures requests, then 200; it counts requests.
func probeServer(t *testing.T, failures int64) (port int, requests *atomic.Int64) {
	t.Helper()
	requests = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if requests.Add(1) <= failures {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ = strconv.Atoi(p)
	return port, requests
}

func probeRunner() (*podRunner, *record.FakeRecorder) {
	rec := record.NewFakeRecorder(10)
	r := &podRunner{n: &Node{recorder: rec}, dirty: make(chan struct{}, 1), pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}}
	return r, rec
}

func hourProbe(port, failureThreshold int) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/livez", Port: intstr.FromInt(port), Scheme: corev1.URISchemeHTTP}},
		PeriodSeconds:    3600, // no second tick happens during the test
		FailureThreshold: int32(failureThreshold),
	}
}

// A startup probe that fails at first notices the first success between its period's ticks.
func TestStartupProbeActsOnFirstSuccessBetweenTicks(t *testing.T) {
	port, requests := probeServer(t, 3)
	r, rec := probeRunner()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := &ctr{spec: corev1.Container{Name: "c"}}
	if ok := r.probeLoop(ctx, c, "Startup", hourProbe(port, 5), "127.0.0.1", time.Now(), func(s bool) bool { return s }); !ok {
		t.Fatalf("probe loop returned false (ctx: %v)", ctx.Err())
	}
	if n := requests.Load(); n != 4 {
		t.Errorf("%d probes, want 4 (three failures, then the success acted on)", n)
	}
	if len(rec.Events) != 0 {
		t.Errorf("event %q", <-rec.Events)
	}
}

// The probes between ticks never count as failures: the budget stays threshold x period.
func TestEarlyProbeFailuresDoNotCount(t *testing.T) {
	port, requests := probeServer(t, 1<<30)
	r, rec := probeRunner()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &ctr{spec: corev1.Container{Name: "c"}}
	done := make(chan bool, 1)
	go func() {
		done <- r.probeLoop(ctx, c, "Startup", hourProbe(port, 2), "127.0.0.1", time.Now(), func(s bool) bool { return s })
	}()
	// Five failed probes: one at the period's first tick and four early ones. Counted, the
	// second would have ended the loop with an Unhealthy event.
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		select {
		case ok := <-done:
			t.Fatalf("probe loop ended (%v) after %d probes", ok, requests.Load())
		default:
		}
		return requests.Load() >= 5, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if ok := <-done; ok {
		t.Error("probe loop reported success")
	}
	if len(rec.Events) != 0 {
		t.Errorf("event %q", <-rec.Events)
	}
}
