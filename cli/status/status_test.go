package status

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func tcpWith(state kamajiv1alpha1.KubernetesVersionStatus, conds ...metav1.Condition) *kamajiv1alpha1.TenantControlPlane {
	t := &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Name: "t", Namespace: "ns", Generation: 3}}
	if state != "" {
		t.Status.Kubernetes.Version.Status = ptr.To(state)
	}
	t.Status.Conditions = conds
	t.Status.ObservedGeneration = 3
	return t
}

func cond(typ string, st metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: st, Reason: reason, Message: msg}
}

func TestStateDefaultsToProvisioning(t *testing.T) {
	if got := State(tcpWith("")); got != kamajiv1alpha1.VersionProvisioning {
		t.Fatalf("State of a fresh TCP = %s", got)
	}
}

func TestFailingOrderAndExclusions(t *testing.T) {
	tcp := tcpWith(kamajiv1alpha1.VersionNotReady,
		cond("Ready", "False", "ReconcileFailed", "stopped"),
		cond("ControlPlaneAvailable", "False", "NotReady", "0/2"),
		cond("TenantConfigured", "Unknown", "Sleeping", ""),
		cond("DataStoreReady", "False", "ProvisioningFailed", "etcd: permission denied\nretrying"),
		cond("CertificatesReady", "True", "CertificatesIssued", "ok"),
	)
	got := Summary(tcp)
	want := "DataStoreReady=False ProvisioningFailed: etcd: permission denied retrying; ControlPlaneAvailable=False NotReady: 0/2"
	if got != want {
		t.Fatalf("Summary:\n got %q\nwant %q", got, want)
	}
	if l := Line(tcp); !strings.HasPrefix(l, "NotReady; DataStoreReady=False") {
		t.Errorf("Line %q", l)
	}
}

// The tenant-side steps wait for a replica: the reason the replica is not available comes first.
func TestFailingListsTheCauseBeforeWhatWaitsForIt(t *testing.T) {
	tcp := tcpWith(kamajiv1alpha1.VersionProvisioning,
		cond("Ready", "False", "Provisioning", "waiting for the control plane pods: pod p, container kube-apiserver: CrashLoopBackOff"),
		cond("AddonsReady", "False", "WaitingForControlPlane", "waiting for an available control-plane replica"),
		cond("ControlPlaneAvailable", "False", "Provisioning", "waiting for the control plane pods: pod p, container kube-apiserver: CrashLoopBackOff"),
		cond("TenantConfigured", "False", "WaitingForControlPlane", "waiting for an available control-plane replica"),
	)
	if got := Failing(tcp); len(got) != 3 || got[0].Type != "ControlPlaneAvailable" {
		t.Fatalf("Failing: %+v", got)
	}
	// An addon that fails on its own is a step before the Deployment, as before.
	tcp = tcpWith(kamajiv1alpha1.VersionNotReady,
		cond("ControlPlaneAvailable", "False", "NotReady", "0/2"),
		cond("AddonsReady", "False", "RenderFailed", "coredns: bad"),
	)
	if got := Failing(tcp); len(got) != 2 || got[0].Type != "AddonsReady" {
		t.Fatalf("Failing: %+v", got)
	}
}

func TestFailingFallsBackToReady(t *testing.T) {
	tcp := tcpWith(kamajiv1alpha1.VersionUpgrading, cond("Ready", "False", "Upgrading", "rolling out v1.37.2 (installed v1.36.3)"))
	if got := Summary(tcp); got != "Ready=False Upgrading: rolling out v1.37.2 (installed v1.36.3)" {
		t.Fatalf("Summary %q", got)
	}
}

func TestSleepingIsNotFailing(t *testing.T) {
	tcp := tcpWith(kamajiv1alpha1.VersionSleeping,
		cond("Ready", "True", "Sleeping", "scaled to zero replicas"),
		cond("ControlPlaneAvailable", "False", "Sleeping", "scaled to zero replicas"),
		cond("AddonsReady", "Unknown", "Sleeping", ""),
	)
	if got := Summary(tcp); got != "" {
		t.Fatalf("a sleeping tenant reports %q", got)
	}
	if Serving(tcp) {
		t.Error("Serving while Sleeping")
	}
	if !Settled(tcp) {
		t.Error("not Settled while Sleeping")
	}
	err := NotServing(tcp)
	if err == nil || !strings.Contains(err.Error(), "is Sleeping") || !strings.Contains(err.Error(), "kubectl kamaji wake t -n ns") {
		t.Fatalf("NotServing: %v", err)
	}
}

func TestNotServingNamesTheFailingCondition(t *testing.T) {
	tcp := tcpWith(kamajiv1alpha1.VersionProvisioning, cond("DataStoreReady", "False", "DataStoreNotFound", `DataStore "x" not found`))
	err := NotServing(tcp)
	want := `TenantControlPlane ns/t is not Ready (status Provisioning; DataStoreReady=False DataStoreNotFound: DataStore "x" not found)`
	if err == nil || err.Error() != want {
		t.Fatalf("NotServing:\n got %v\nwant %s", err, want)
	}
	if err := NotServing(tcpWith(kamajiv1alpha1.VersionNotReady)); err == nil || !strings.Contains(err.Error(), "no condition says why yet") {
		t.Fatalf("without conditions: %v", err)
	}
}

func TestServingAndSettled(t *testing.T) {
	ready := tcpWith(kamajiv1alpha1.VersionReady, cond("Ready", "True", "Ready", "2/2"))
	if !Serving(ready) || NotServing(ready) != nil || !Settled(ready) {
		t.Fatal("a Ready TCP is not Serving/Settled")
	}
	limited := tcpWith(kamajiv1alpha1.VersionWriteLimited, cond("Ready", "True", "Ready", "2/2"))
	if !Serving(limited) {
		t.Error("WriteLimited is not Serving")
	}
	stale := ready.DeepCopy()
	stale.Generation = 4
	if Settled(stale) || Observed(stale) {
		t.Error("a status of an older generation is Settled")
	}
	readyFalse := tcpWith(kamajiv1alpha1.VersionReady, cond("Ready", "False", "X", ""))
	if Serving(readyFalse) {
		t.Error("Serving with Ready=False")
	}
}

func TestPausedAndReplicas(t *testing.T) {
	tcp := tcpWith(kamajiv1alpha1.VersionReady)
	if Paused(tcp) || Replicas(tcp) != DefaultReplicas {
		t.Fatal("defaults")
	}
	tcp.Annotations = map[string]string{kamajiv1alpha1.PausedAnnotation: ""}
	tcp.Spec.ControlPlane.Deployment.Replicas = ptr.To[int32](0)
	if !Paused(tcp) || Replicas(tcp) != 0 {
		t.Fatal("annotation or replicas not read")
	}
	if l := Line(tcp); l != "Ready (paused)" {
		t.Errorf("Line %q", l)
	}
}

func TestOneLine(t *testing.T) {
	if got := OneLine("  a\n  b\r\nc \n"); got != "a b c" {
		t.Fatalf("%q", got)
	}
}

// A tenant that sleeps when idle: asleep (True) or awake (False Awake) is its normal life, not
// a problem; waking is a change in progress and an unusable annotation a problem.
func TestFailingIdleSleep(t *testing.T) {
	for _, tc := range []struct {
		cond metav1.Condition
		want string
	}{
		{cond("Sleeping", "True", "Idle", "no request for 15m"), ""},
		{cond("Sleeping", "False", "Awake", "sleeps after 15m"), ""},
		{cond("Sleeping", "False", "Waking", "woken"), "Sleeping=False Waking: woken"},
		{cond("Sleeping", "False", "SleepUnavailable", "no tenant-webhook-url"), "Sleeping=False SleepUnavailable: no tenant-webhook-url"},
	} {
		tcp := tcpWith(kamajiv1alpha1.VersionSleeping, cond("Ready", "True", "Ready", ""), tc.cond)
		if got := Summary(tcp); got != tc.want {
			t.Errorf("%s %s: Summary %q, want %q", tc.cond.Status, tc.cond.Reason, got, tc.want)
		}
	}
}
