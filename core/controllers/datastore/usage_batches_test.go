package datastore

import (
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func TestUsageBatches(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	l := UsagePolicy{Interval: 5 * time.Minute, AsleepInterval: time.Hour, BatchKeys: 1000, BatchTenants: 3, PassCalls: 2}
	for _, tc := range []struct {
		name  string
		cands []usageCandidate
		want  [][]int
	}{
		{"nothing due", []usageCandidate{{ago(time.Minute), 10, false}, {ago(4 * time.Minute), 10, false}}, nil},
		{"never asked for comes first (unknown keys: the whole budget), then the longest waiting",
			[]usageCandidate{{ago(6 * time.Minute), 10, false}, {time.Time{}, -1, false}, {ago(time.Minute), 10, false}, {ago(20 * time.Minute), 10, false}},
			[][]int{{1}, {3, 0}}},
		{"at most BatchTenants a call, PassCalls calls a pass",
			[]usageCandidate{{ago(10 * time.Minute), 1, false}, {ago(9 * time.Minute), 1, false}, {ago(8 * time.Minute), 1, false}, {ago(7 * time.Minute), 1, false}, {ago(6 * time.Minute), 1, false}, {ago(5 * time.Minute), 1, false}, {ago(11 * time.Minute), 1, false}},
			[][]int{{6, 0, 1}, {2, 3, 4}}},
		{"keys: a call stops before the budget, a larger tenant goes alone",
			[]usageCandidate{{ago(10 * time.Minute), 600, false}, {ago(9 * time.Minute), 600, false}, {ago(8 * time.Minute), 5000, false}, {ago(7 * time.Minute), 10, false}},
			[][]int{{0}, {1}}},
		{"asleep: every AsleepInterval",
			[]usageCandidate{{ago(10 * time.Minute), 10, true}, {ago(61 * time.Minute), 10, true}, {ago(10 * time.Minute), 10, false}},
			[][]int{{1, 2}}},
		{"unknown keys count as unknownUsageKeys",
			[]usageCandidate{{time.Time{}, -1, false}, {time.Time{}, -1, false}},
			[][]int{{0}, {1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := usageBatches(tc.cands, now, l); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("usageBatches = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestUsagePolicyDefaults(t *testing.T) {
	if got := (UsagePolicy{}).withDefaults(); got != DefaultUsagePolicy {
		t.Errorf("zero policy = %+v, want the defaults %+v", got, DefaultUsagePolicy)
	}
	if got := (UsagePolicy{PassCalls: 1}).withDefaults(); got.PassCalls != 1 || got.BatchKeys != DefaultUsagePolicy.BatchKeys || got.Interval != DefaultUsagePolicy.Interval || got.AsleepInterval != DefaultUsagePolicy.AsleepInterval {
		t.Errorf("PassCalls 1 = %+v", got)
	}
}

// A failed call halves the keys the DataStore's next calls ask for, down to one tenant a call;
// each call that answers doubles them back up to the limit. DataStores are apart.
func TestUsageBudget(t *testing.T) {
	var a usageAsked
	const limit = 1000
	if got := a.budget("a", limit); got != limit {
		t.Fatalf("budget before any call = %d, want %d", got, limit)
	}
	a.failed("a", limit)
	a.failed("a", limit)
	if got := a.budget("a", limit); got != 250 {
		t.Errorf("after two failures = %d, want 250", got)
	}
	if got := a.budget("b", limit); got != limit {
		t.Errorf("another DataStore = %d, want %d", got, limit)
	}
	for range 20 {
		a.failed("a", limit)
	}
	if got := a.budget("a", limit); got != 1 {
		t.Errorf("after many failures = %d, want 1 (one tenant a call)", got)
	}
	a.succeeded("a", limit)
	if got := a.budget("a", limit); got != 2 {
		t.Errorf("after a success = %d, want 2", got)
	}
	for range 10 {
		a.succeeded("a", limit)
	}
	if got := a.budget("a", limit); got != limit {
		t.Errorf("after many successes = %d, want %d", got, limit)
	}
	a.failed("a", limit)
	a.forget("a")
	if got := a.budget("a", limit); got != limit {
		t.Errorf("a forgotten DataStore = %d, want %d", got, limit)
	}
}

// A count is written when its figures differ from the status's, or to date the same figures
// anew once they are Rewrite old; an idle tenant's counts in between cost no write.
func TestUsageNews(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	usage := func(bytes, keys *int64, when time.Time) kamajiv1alpha1.StorageUsage {
		return kamajiv1alpha1.StorageUsage{Bytes: bytes, Keys: keys, LastUpdate: metav1.NewTime(when)}
	}
	n := func(v int64) *int64 { return &v }
	last := usage(n(100), n(3), at)
	for _, tc := range []struct {
		name  string
		last  *kamajiv1alpha1.StorageUsage
		count kamajiv1alpha1.StorageUsage
		want  bool
	}{
		{"the first count", nil, usage(n(100), n(3), at), true},
		{"the same figures 5 minutes later", &last, usage(n(100), n(3), at.Add(5*time.Minute)), false},
		{"the same figures 59 minutes later", &last, usage(n(100), n(3), at.Add(59*time.Minute)), false},
		{"the same figures an hour later", &last, usage(n(100), n(3), at.Add(time.Hour)), true},
		{"a key more", &last, usage(n(110), n(4), at.Add(5*time.Minute)), true},
		{"as many keys, more bytes", &last, usage(n(120), n(3), at.Add(5*time.Minute)), true},
		{"bytes no longer reported", &last, usage(nil, n(3), at.Add(5*time.Minute)), true},
	} {
		if got := usageNews(tc.last, tc.count, time.Hour); got != tc.want {
			t.Errorf("%s: written %v, want %v", tc.name, got, tc.want)
		}
	}
}
