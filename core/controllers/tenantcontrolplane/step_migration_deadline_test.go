package tenantcontrolplane

import (
	"errors"
	"testing"
	"time"
)

// A phase that fails while migrating comes back steadily, and never after the deadline: the
// controller's own backoff would grow to minutes and hold a rollback past it.
func TestByDeadline(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		left time.Duration
		want time.Duration
	}{
		{"a plain error, far from the deadline", errors.New("dial tcp: connection refused"), 4 * time.Minute, migrationRetry},
		{"a plain error, close to the deadline", errors.New("dial tcp: connection refused"), 2 * time.Second, 3 * time.Second},
		{"past the deadline", errors.New("x"), -time.Minute, time.Second},
		{"a plugin backoff longer than the time left", &stepError{err: errors.New("x"), retryAfter: time.Minute}, 10 * time.Second, migrationRetry},
		{"a shorter wait is kept", &stepError{err: errors.New("x"), retryAfter: time.Second}, time.Minute, time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			se, ok := asStepError(byDeadline(c.err, c.left))
			if !ok || se.retryAfter != c.want {
				t.Fatalf("retry after %v (%v), want %v", se.retryAfter, ok, c.want)
			}
		})
	}
}
