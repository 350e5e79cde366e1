// Package sleep puts idle tenant control planes to sleep and wakes them on their first
// connection. A TCP opts in with the kamaji.clastix.io/sleep-after annotation. Its apiserver
// then sends audit events of requests from outside the control plane to the manager
// (AuditHandler), which records the time of the last one in a Lease (Recorder). The TCP
// controller scales an idle TCP to zero and points its Service at the manager (a wake
// EndpointSlice), where WakeServer holds each connection, wakes the TCP and, once an apiserver
// pod is ready, relays the connection to it. Once awake the Service selects the apiserver pods
// again: nothing of this package sits in the path of an awake tenant's requests.
package sleep

import (
	"fmt"
	"time"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

const (
	// WakeLabel marks the EndpointSlice that sends a sleeping TCP's Service to the manager; its
	// value is the TCP's name (the slice is in the TCP's namespace).
	WakeLabel = "kamaji.clastix.io/wake"
	// ActivityLabel marks the Lease whose renewTime is the TCP's last outside request; its value
	// is the TCP's name.
	ActivityLabel = "kamaji.clastix.io/activity"
	// ActivityPath is where tenant apiservers post their audit events:
	// ActivityPath + "<namespace>/<name>" on the manager's webhook server.
	ActivityPath = "/tenant-activity/"
	// SleepingSelectorLabel is added to a sleeping TCP's Service selector, so that it selects
	// no pod; no pod carries it.
	SleepingSelectorLabel = "kamaji.clastix.io/sleeping"
	// MinSleepAfter is the shortest idle time accepted.
	MinSleepAfter = 30 * time.Second
)

// LeaseName is the activity Lease of a TCP.
func LeaseName(tcp string) string { return tcp + "-activity" }

// WakeSliceName is the wake EndpointSlice of a TCP.
func WakeSliceName(tcp string) string { return tcp + "-wake" }

// SleepAfter reads the TCP's sleep-after annotation: 0 without it.
func SleepAfter(tcp *kamajiv1alpha1.TenantControlPlane) (time.Duration, error) {
	v, ok := tcp.Annotations[kamajiv1alpha1.SleepAfterAnnotation]
	if !ok {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("annotation %s: %q is not a duration such as 15m", kamajiv1alpha1.SleepAfterAnnotation, v)
	}
	if d < MinSleepAfter {
		return 0, fmt.Errorf("annotation %s: %s is shorter than the minimum, %s", kamajiv1alpha1.SleepAfterAnnotation, v, MinSleepAfter)
	}
	return d, nil
}

// TouchInterval is how often the activity Lease is written while requests keep coming: often
// enough to be precise against sleepAfter, rarely enough to cost the admin cluster little.
func TouchInterval(sleepAfter time.Duration) time.Duration {
	return min(max(sleepAfter/4, 5*time.Second), 2*time.Minute)
}
