package local_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/sleep"
)

func init() {
	registerPlaneSubtest("automatic sleep and wake", testSleepWake)
}

// testSleepWake opts tenant-00 and tenant-01 into automatic sleep after 30 s. A client keeps
// asking tenant-00 for its version and namespaces; nobody talks to tenant-01. tenant-01 falls asleep
// (status Sleeping, no pod) while tenant-00 stays awake with the same pods; then a plain
// `kubectl get ns` against the sleeping tenant-01 succeeds, held while it wakes.
func testSleepWake(t *testing.T, e *e2e) {
	const busy, idle = "tenant-00", "tenant-01"
	for _, name := range []string{busy, idle} {
		e.patchTCP(t, name, func(tcp *kamajiv1alpha1.TenantControlPlane) {
			metav1.SetMetaDataAnnotation(&tcp.ObjectMeta, kamajiv1alpha1.SleepAfterAnnotation, "30s")
		})
	}
	t.Cleanup(func() {
		for _, name := range []string{busy, idle} {
			e.patchTCP(t, name, func(tcp *kamajiv1alpha1.TenantControlPlane) {
				delete(tcp.Annotations, kamajiv1alpha1.SleepAfterAnnotation)
			})
		}
		for _, name := range []string{busy, idle} {
			e.waitSleepCondition(t, name, "")
			e.waitStatus(t, name, kamajiv1alpha1.VersionReady)
		}
	})
	// The annotation adds the activity audit to the apiservers: they roll once.
	for _, name := range []string{busy, idle} {
		e.waitSleepCondition(t, name, sleep.ReasonAwake)
		e.waitStatus(t, name, kamajiv1alpha1.VersionReady)
	}

	poll := startRawPoller(e.tenantREST(t, busy))
	defer poll.halt()
	var busyPods string
	eventually(t, busy+"'s rollout to finish", func() error {
		pods := e.tenantPods(t, busy)
		for _, p := range pods {
			if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
				return fmt.Errorf("pods %v", podSummary(pods))
			}
		}
		busyPods = podUIDs(pods)
		return nil
	})

	t.Run("the idle tenant sleeps, the busy one does not", func(t *testing.T) {
		start := time.Now()
		e.waitSleepCondition(t, idle, sleep.ReasonIdle)
		e.waitStatus(t, idle, kamajiv1alpha1.VersionSleeping)
		eventually(t, idle+"'s pods to be gone", func() error {
			if pods := e.tenantPods(t, idle); len(pods) > 0 {
				return fmt.Errorf("pods %v", podSummary(pods))
			}
			return nil
		})
		t.Logf("%s asleep %s after the rollout", idle, time.Since(start).Round(time.Second))
		tcp := e.tcp(t, busy)
		if c := meta.FindStatusCondition(tcp.Status.Conditions, kamajiv1alpha1.ConditionSleeping); c == nil || c.Reason != sleep.ReasonAwake {
			t.Errorf("%s, polled every 100 ms, has Sleeping condition %+v", busy, c)
		}
		if got := podUIDs(e.tenantPods(t, busy)); got != busyPods {
			t.Errorf("%s's pods changed while it was polled: %s, were %s", busy, got, busyPods)
		}
	})

	t.Run("kubectl against the sleeping tenant succeeds", func(t *testing.T) {
		start := time.Now()
		cmd := exec.Command(e.kubectl, "--kubeconfig", filepath.Join(e.state, idle+".kubeconfig"), "--request-timeout=2m", "get", "ns", "-o", "name")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "namespace/kube-system") {
			t.Fatalf("kubectl get ns against the sleeping %s: %v\n%s", idle, err, out)
		}
		t.Logf("woken and answered in %s", time.Since(start).Round(100*time.Millisecond))
		e.waitSleepCondition(t, idle, sleep.ReasonAwake)
		e.waitStatus(t, idle, kamajiv1alpha1.VersionReady)
		eventually(t, "a direct answer from "+idle, func() error {
			_, err := e.kubectlErr(idle, "get", "ns")
			return err
		})
	})
	poll.halt()
	if answers, failures, _ := poll.result(); answers == 0 || len(failures) > 0 {
		t.Errorf("polling %s: %d answers, %d failures: %v", busy, answers, len(failures), failures)
	}
}

// podUIDs identifies a set of pods: it changes when one is replaced.
func podUIDs(pods []corev1.Pod) string {
	uids := make([]string, 0, len(pods))
	for _, p := range pods {
		uids = append(uids, string(p.UID))
	}
	sort.Strings(uids)
	return strings.Join(uids, ",")
}

// waitSleepCondition waits until the TCP's Sleeping condition has reason ("": no condition).
func (e *e2e) waitSleepCondition(t *testing.T, name, reason string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s's Sleeping condition to be %q", name, reason), func() error {
		c := meta.FindStatusCondition(e.tcp(t, name).Status.Conditions, kamajiv1alpha1.ConditionSleeping)
		switch {
		case c == nil && reason == "":
			return nil
		case c != nil && c.Reason == reason:
			return nil
		}
		return fmt.Errorf("condition %+v", c)
	})
}
