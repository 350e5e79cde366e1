package local_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func init() {
	registerPlaneSubtest("kubectl get events shows the TCP transitions", testTCPEvents)
}

// testTCPEvents makes tenant-00 go Ready → WriteLimited → Ready (a blockDeletion set, then
// removed) and reads, with kubectl against the admin cluster, the Events regarding the TCP:
// each transition has one whose reason is the new reason of the condition that changed
// (ControlPlaneAvailable's, the version status), recorded by kamaji after the change.
func testTCPEvents(t *testing.T, e *e2e) {
	const name = "tenant-00"
	e.waitStatus(t, name, kamajiv1alpha1.VersionReady)
	t.Cleanup(func() { e.liftWritePermissions(t, name) })

	since := time.Now()
	e.setWritePermissions(t, name, kamajiv1alpha1.Permissions{BlockDelete: true})
	e.waitStatus(t, name, kamajiv1alpha1.VersionWriteLimited)
	e.waitTransitionEvent(t, name, since, string(kamajiv1alpha1.VersionWriteLimited))

	since = time.Now()
	e.setWritePermissions(t, name, kamajiv1alpha1.Permissions{})
	e.waitStatus(t, name, kamajiv1alpha1.VersionReady)
	e.waitTransitionEvent(t, name, since, string(kamajiv1alpha1.VersionReady))

	// The table a user reads names the TCP and both reasons.
	out, err := e.kubectlAs(filepath.Join(e.state, "admin.kubeconfig"), "get", "events", "-n", "default",
		"--field-selector", "involvedObject.kind=TenantControlPlane,involvedObject.name="+name)
	if err != nil {
		t.Fatal(out)
	}
	t.Logf("kubectl get events:\n%s", out)
	for _, want := range []string{"tenantcontrolplane/" + name, string(kamajiv1alpha1.VersionWriteLimited), string(kamajiv1alpha1.VersionReady)} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl get events does not show %q", want)
		}
	}
}

// waitTransitionEvent waits until kubectl lists an Event regarding the TCP, last seen after
// since, for its ControlPlaneAvailable condition now at reason want: reason, action (the
// condition type) and note as the condition says, reported by kamaji.
func (e *e2e) waitTransitionEvent(t *testing.T, name string, since time.Time, want string) {
	t.Helper()
	const condType = kamajiv1alpha1.ConditionControlPlaneAvailable
	c := meta.FindStatusCondition(e.tcp(t, name).Status.Conditions, condType)
	if c == nil || c.Reason != want {
		t.Fatalf("%s condition %+v, want reason %s", condType, c, want)
	}
	note := fmt.Sprintf("%s is %s", condType, c.Status)
	eventually(t, fmt.Sprintf("an Event %s regarding %s", want, name), func() error {
		evs, err := e.tcpEvents(name)
		if err != nil {
			return err
		}
		var seen []string
		for _, ev := range evs {
			last := lastSeen(ev)
			seen = append(seen, fmt.Sprintf("%s %s %s %q at %s", ev.Type, ev.Reason, ev.Action, ev.Message, last.Format(time.RFC3339Nano)))
			if ev.Reason == want && ev.Action == condType && strings.HasPrefix(ev.Message, note) &&
				ev.Type == corev1.EventTypeNormal && ev.ReportingController == "kamaji" && !last.Before(since) {
				return nil
			}
		}
		return fmt.Errorf("none since %s among %d: %s", since.Format(time.RFC3339Nano), len(evs), strings.Join(seen, "; "))
	})
}

// tcpEvents lists, with kubectl against the admin cluster, the Events regarding the TCP.
func (e *e2e) tcpEvents(name string) ([]corev1.Event, error) {
	out, err := e.kubectlAs(filepath.Join(e.state, "admin.kubeconfig"), "get", "events", "-n", "default", "-o", "json",
		"--field-selector", "involvedObject.kind=TenantControlPlane,involvedObject.name="+name)
	if err != nil {
		return nil, fmt.Errorf("%s", out)
	}
	var list corev1.EventList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("kubectl get events -o json: %w", err)
	}
	return list.Items, nil
}

// lastSeen is when an Event was last recorded, as kubectl's LAST SEEN column: the latest of
// its series, its last timestamp and its event time (events.k8s.io Events fill only the last).
func lastSeen(ev corev1.Event) time.Time {
	last := ev.EventTime.Time
	if ev.LastTimestamp.After(last) {
		last = ev.LastTimestamp.Time
	}
	if ev.Series != nil && ev.Series.LastObservedTime.After(last) {
		last = ev.Series.LastObservedTime.Time
	}
	return last
}
