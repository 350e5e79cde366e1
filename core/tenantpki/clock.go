package tenantpki

import "time"

// Clock is the time source of every decision and of the validity of issued certificates.
// Injected so tests can move time to a renewal deadline without waiting.
type Clock interface{ Now() time.Time }

// SystemClock is the wall clock.
var SystemClock Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
