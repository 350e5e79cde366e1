// Package conditionevents turns condition transitions into Kubernetes Events: one Event each
// time a condition appears or changes status or reason, none while it stays as it is (a
// controller at rest records nothing), with the condition's reason as the Event's reason and
// its message, scrubbed of anything that looks like a credential, as the note.
package conditionevents

import (
	"fmt"
	"regexp"
	"sync"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Recorder is the part of an events.EventRecorder used here.
type Recorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Changed returns the conditions of now that are new or whose status or reason differ from
// before, in now's order. A changed message alone is not a transition.
func Changed(before, now []metav1.Condition) []metav1.Condition {
	var out []metav1.Condition
	for _, c := range now {
		if old := find(before, c.Type); old == nil || old.Status != c.Status || old.Reason != c.Reason {
			out = append(out, c)
		}
	}
	return out
}

func find(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// Record records one Event per transition from before to now on obj. A condition turned False
// is a Warning unless inProgress says its reason is a normal step of the lifecycle (such as
// Provisioning or Upgrading); everything else is Normal. The action is the condition type.
func Record(rec Recorder, obj runtime.Object, before, now []metav1.Condition, inProgress func(reason string) bool) {
	if rec == nil {
		return
	}
	for _, c := range Changed(before, now) {
		rec.Eventf(obj, nil, Type(c, inProgress), c.Reason, c.Type, "%s", Note(c))
	}
}

// Type is the Event type of a condition: Warning for a False condition whose reason is not a
// step in progress.
func Type(c metav1.Condition, inProgress func(reason string) bool) string {
	if c.Status == metav1.ConditionFalse && (inProgress == nil || !inProgress(c.Reason)) {
		return corev1.EventTypeWarning
	}
	return corev1.EventTypeNormal
}

// maxNote is the longest note the events.k8s.io API accepts.
const maxNote = 1024

// Note is an Event's note for a condition: "<Type> is <Status>: <message>", scrubbed and cut
// to the API's limit.
func Note(c metav1.Condition) string {
	note := fmt.Sprintf("%s is %s", c.Type, c.Status)
	if c.Message != "" {
		note += ": " + c.Message
	}
	return Truncate(Scrub(note), maxNote)
}

var scrubbers = []struct {
	re   *regexp.Regexp
	repl string
}{
	// Certificates and keys, whole.
	{regexp.MustCompile(`-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(-----END [A-Z0-9 ]+-----|$)`), "[PEM redacted]"},
	// The password of a URL (postgres://user:secret@host).
	{regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*):[^@\s/]*@`), "$1:[redacted]@"},
	// DSN and query parameters (password=secret), and JSON fields ("password":"secret").
	{regexp.MustCompile(`(?i)\b(password|passwd|pwd|token|secret|api[_-]?key|private[_-]?key)=("[^"]*"|'[^']*'|[^\s&;,]+)`), "$1=[redacted]"},
	{regexp.MustCompile(`(?i)"(password|passwd|token|secret|api[_-]?key|private[_-]?key)"\s*:\s*"[^"]*"`), `"$1":"[redacted]"`},
	// Authorization headers.
	{regexp.MustCompile(`(?i)\b(bearer|basic)\s+[a-zA-Z0-9._~+/=-]{8,}`), "$1 [redacted]"},
}

// Scrub removes what looks like a credential from a message: PEM blocks, URL passwords,
// password/token/secret assignments and authorization headers. The conditions' messages are
// written without secrets already (plugin errors are redacted of the configuration they were
// sent); this is the last net before a message reaches an Event, which more users can read.
func Scrub(s string) string {
	for _, sc := range scrubbers {
		s = sc.re.ReplaceAllString(s, sc.repl)
	}
	return s
}

// Truncate cuts s to at most n bytes without splitting a UTF-8 character, marking the cut.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "..."
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// Memo remembers, per object, the conditions last recorded, for a controller that reads its
// objects from a cache: a pass that runs before the cache has seen the previous pass's status
// write compares against what was recorded, not against the stale copy, and records nothing
// twice.
type Memo struct {
	mu   sync.Mutex
	last map[string][]metav1.Condition
}

// Before returns the conditions last recorded for key, or fallback when none were.
func (m *Memo) Before(key string, fallback []metav1.Condition) []metav1.Condition {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.last[key]; ok {
		return c
	}
	return fallback
}

// Remember stores the conditions just recorded for key.
func (m *Memo) Remember(key string, conds []metav1.Condition) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil {
		m.last = map[string][]metav1.Condition{}
	}
	m.last[key] = append([]metav1.Condition(nil), conds...)
}

// Forget drops key (its object is gone).
func (m *Memo) Forget(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.last, key)
}
