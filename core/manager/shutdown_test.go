package manager

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

const testDeadline = 10 * time.Second

// stopClock stands in for the delay's timer: the test ends the delay when it chooses.
type stopClock struct {
	asked chan time.Duration
	fire  chan time.Time
}

func (c *stopClock) after(d time.Duration) <-chan time.Time {
	c.asked <- d
	return c.fire
}

func newStopClock() *stopClock {
	return &stopClock{asked: make(chan time.Duration, 1), fire: make(chan time.Time, 1)}
}

func ended(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

func waitDone(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(testDeadline):
		t.Fatalf("the context did not end %s", what)
	}
}

// The context goes on through the delay that follows SIGTERM, then ends; a second signal then
// exits.
func TestShutdownDelayKeepsServingThenStops(t *testing.T) {
	sigs, clock, exited := make(chan os.Signal, 2), newStopClock(), make(chan struct{})
	ctx := delayedStop(sigs, 7*time.Second, clock.after, func() { close(exited) }, logr.Discard())
	if ended(ctx) {
		t.Fatal("the context ended before any signal")
	}
	sigs <- syscall.SIGTERM
	select {
	case d := <-clock.asked:
		if d != 7*time.Second {
			t.Errorf("delay %s, want 7s", d)
		}
	case <-time.After(testDeadline):
		t.Fatal("no delay began after SIGTERM")
	}
	if ended(ctx) {
		t.Fatal("the context ended during the shutdown delay")
	}
	clock.fire <- time.Now()
	waitDone(t, ctx, "after the delay")
	select {
	case <-exited:
		t.Fatal("exited after one signal")
	default:
	}
	sigs <- syscall.SIGTERM
	select {
	case <-exited:
	case <-time.After(testDeadline):
		t.Fatal("a second signal did not exit")
	}
}

// A second signal during the delay exits at once; with no delay the first signal ends the
// context at once.
func TestShutdownDelaySecondSignalAndNoDelay(t *testing.T) {
	t.Run("second signal during the delay", func(t *testing.T) {
		sigs, clock, exited := make(chan os.Signal, 2), newStopClock(), make(chan struct{})
		delayedStop(sigs, time.Minute, clock.after, func() { close(exited) }, logr.Discard())
		sigs <- syscall.SIGTERM
		<-clock.asked
		sigs <- os.Interrupt
		select {
		case <-exited:
		case <-time.After(testDeadline):
			t.Fatal("a second signal during the delay did not exit")
		}
	})
	t.Run("no delay", func(t *testing.T) {
		sigs, clock := make(chan os.Signal, 2), newStopClock()
		ctx := delayedStop(sigs, 0, clock.after, func() {}, logr.Discard())
		sigs <- syscall.SIGTERM
		waitDone(t, ctx, "at once without a delay")
		if len(clock.asked) != 0 {
			t.Error("a delay was timed with --shutdown-delay 0")
		}
	})
}
