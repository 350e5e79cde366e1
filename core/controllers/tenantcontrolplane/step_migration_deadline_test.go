package tenantcontrolplane

import (
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
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

// A configuration error met during a migration says when it is tried again, not that it waits
// for the controller's backoff; its cause is kept.
func TestByDeadlineRephrases(t *testing.T) {
	cause := errors.New(`DataStore "b" does not exist (` + retrying + `, and at once when it is created)`)
	err := byDeadline(&stepError{reason: ReasonDataStoreNotFound, err: cause}, time.Minute)
	if want := `DataStore "b" does not exist (retrying within 5s, and at once when it is created)`; err.Error() != want {
		t.Errorf("message %q, want %q", err.Error(), want)
	}
	if !errors.Is(err, cause) {
		t.Errorf("the cause is lost: %v", err)
	}
	if se, _ := asStepError(err); se.reason != ReasonDataStoreNotFound {
		t.Errorf("reason %q", se.reason)
	}
}

// Every failed step of a migration under way comes back steadily, the rollback included (it
// lifts the tenant's freeze); outside a migration, and once it failed, the controller's own
// backoff applies.
func TestSteadily(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	plain := errors.New("the tenant apiserver is busy")
	for _, c := range []struct {
		name     string
		phase    kamajiv1alpha1.MigrationPhase // "": no migration
		deadline time.Duration                 // from now
		want     time.Duration                 // 0: the error as it was
	}{
		{"no migration", "", 0, 0},
		{"a failed migration", kamajiv1alpha1.MigrationFailed, -time.Minute, 0},
		{"copying, far from the deadline", kamajiv1alpha1.MigrationCopying, 4 * time.Minute, migrationRetry},
		{"freezing, close to the deadline", kamajiv1alpha1.MigrationFreezing, 2 * time.Second, 3 * time.Second},
		{"rolling back, past the deadline", kamajiv1alpha1.MigrationRollingBack, -time.Minute, migrationRetry},
		{"unfreezing after the switch, past the deadline", kamajiv1alpha1.MigrationUnfreezing, -time.Minute, migrationRetry},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &pass{now: now}
			if c.phase != "" {
				p.status.Storage.Migration = &kamajiv1alpha1.StorageMigrationStatus{Phase: c.phase, Deadline: metav1.NewTime(now.Add(c.deadline))}
			}
			err := steadily(p, plain)
			se, ok := asStepError(err)
			switch {
			case c.want == 0 && err != plain:
				t.Fatalf("got %v, want the error unchanged", err)
			case c.want != 0 && (!ok || se.retryAfter != c.want):
				t.Fatalf("retry after %v (%v), want %v", se, ok, c.want)
			}
			if steadily(p, nil) != nil {
				t.Fatal("no error became one")
			}
		})
	}
}
