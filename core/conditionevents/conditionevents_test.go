package conditionevents

import (
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

type recorded struct{ eventType, reason, action, note string }

type recorder struct{ events []recorded }

func (r *recorder) Eventf(_ runtime.Object, _ runtime.Object, eventType, reason, action, note string, args ...any) {
	r.events = append(r.events, recorded{eventType, reason, action, fmt.Sprintf(note, args...)})
}

func cond(t string, s metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg}
}

func TestOneEventPerTransitionNoneAtRest(t *testing.T) {
	progress := func(r string) bool { return r == "Provisioning" }
	rec := &recorder{}
	pass1 := []metav1.Condition{cond("Ready", "False", "Provisioning", "waiting for the pods"), cond("DataStoreReady", "True", "Provisioned", "slice ready")}
	Record(rec, nil, nil, pass1, progress)
	// Same status and reason, another message: not a transition.
	pass2 := []metav1.Condition{cond("Ready", "False", "Provisioning", "still waiting"), cond("DataStoreReady", "True", "Provisioned", "slice ready")}
	Record(rec, nil, pass1, pass2, progress)
	pass3 := []metav1.Condition{cond("Ready", "False", "ReconcileFailed", "deployment: forbidden"), cond("DataStoreReady", "True", "Provisioned", "slice ready")}
	Record(rec, nil, pass2, pass3, progress)
	pass4 := []metav1.Condition{cond("Ready", "True", "Ready", "1/1 replicas"), cond("DataStoreReady", "True", "Provisioned", "slice ready")}
	Record(rec, nil, pass3, pass4, progress)

	want := []recorded{
		{"Normal", "Provisioning", "Ready", "Ready is False: waiting for the pods"},
		{"Normal", "Provisioned", "DataStoreReady", "DataStoreReady is True: slice ready"},
		{"Warning", "ReconcileFailed", "Ready", "Ready is False: deployment: forbidden"},
		{"Normal", "Ready", "Ready", "Ready is True: 1/1 replicas"},
	}
	if fmt.Sprint(rec.events) != fmt.Sprint(want) {
		t.Fatalf("events\n got %v\nwant %v", rec.events, want)
	}
}

func TestScrubRemovesCredentials(t *testing.T) {
	for in, secret := range map[string]string{
		"dial postgres://kamaji:s3cr3t-pw@db:5432/kamaji: refused":                                    "s3cr3t-pw",
		"host=db user=kamaji password=s3cr3t-pw sslmode=require":                                      "s3cr3t-pw",
		`bad config {"user":"kamaji","password":"s3cr3t-pw"}`:                                         "s3cr3t-pw",
		"key -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBs3cr3t\n-----END EC PRIVATE KEY----- rejected": "MHcCAQEEIBs3cr3t",
		"unauthorized: Authorization: Bearer abcdefgh12345678 rejected":                               "abcdefgh12345678",
		"token=abcd1234&other=1": "abcd1234",
	} {
		out := Scrub(in)
		if strings.Contains(out, secret) {
			t.Errorf("Scrub(%q) = %q still has %q", in, out, secret)
		}
	}
	// What names the cause is kept.
	for _, keep := range []string{
		`spec.basicAuth.password: Secret kamaji-system/pg key "password": no such key`,
		"password authentication failed for user \"kamaji\"",
		"etcdserver: authentication failed, invalid user ID or password",
	} {
		if out := Scrub(keep); out != keep {
			t.Errorf("Scrub(%q) = %q, want it unchanged", keep, out)
		}
	}
}

func TestNoteFitsTheAPI(t *testing.T) {
	n := Note(cond("Ready", "False", "ReconcileFailed", strings.Repeat("é", 2000)))
	if len(n) > maxNote || !strings.HasSuffix(n, "...") || !strings.HasPrefix(n, "Ready is False: é") {
		t.Fatalf("note of %d bytes: %q...", len(n), n[:40])
	}
}

func TestMemoPrefersWhatWasRecorded(t *testing.T) {
	var m Memo
	stale := []metav1.Condition{cond("Ready", "False", "NotReady", "")}
	if got := m.Before("a", stale); len(got) != 1 || got[0].Reason != "NotReady" {
		t.Fatalf("without a record, the object's conditions: %v", got)
	}
	m.Remember("a", []metav1.Condition{cond("Ready", "True", "Ready", "")})
	if got := m.Before("a", stale); got[0].Reason != "Ready" {
		t.Fatalf("after a record, the recorded conditions: %v", got)
	}
	m.Forget("a")
	if got := m.Before("a", stale); got[0].Reason != "NotReady" {
		t.Fatalf("after Forget, the object's conditions: %v", got)
	}
}
