package tenantcontrolplane

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// Which of a DataStore's TCPs an update of the DataStore enqueues: its spec changing reaches
// them all, its turning Ready those that wait for it, anything else none (a DataStore whose
// probe times out once must not cost a pass of every tenant on it, twice).
func TestDataStoreUpdateReaches(t *testing.T) {
	ds := func(generation int64, ready metav1.ConditionStatus) *kamajiv1alpha1.DataStore {
		d := &kamajiv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Name: "default", Generation: generation}}
		if ready != "" {
			d.Status.Conditions = []metav1.Condition{{Type: kamajiv1alpha1.ConditionReady, Status: ready}}
		}
		return d
	}
	tcp := func(dataStoreReady metav1.ConditionStatus, migrating bool) *kamajiv1alpha1.TenantControlPlane {
		c := &kamajiv1alpha1.TenantControlPlane{}
		if dataStoreReady != "" {
			c.Status.Conditions = []metav1.Condition{{Type: kamajiv1alpha1.ConditionDataStoreReady, Status: dataStoreReady}}
		}
		if migrating {
			c.Status.Storage.Migration = &kamajiv1alpha1.StorageMigrationStatus{}
		}
		return c
	}
	provisioned, failed, fresh, migrating := tcp(metav1.ConditionTrue, false), tcp(metav1.ConditionFalse, false), tcp("", false), tcp(metav1.ConditionTrue, true)
	for _, c := range []struct {
		name     string
		old, new *kamajiv1alpha1.DataStore
		// reached: which of provisioned, failed, new, migrating the update enqueues.
		reached [4]bool
	}{
		{"spec changed", ds(1, metav1.ConditionTrue), ds(2, metav1.ConditionTrue), [4]bool{true, true, true, true}},
		{"spec changed while not Ready", ds(1, metav1.ConditionFalse), ds(2, metav1.ConditionFalse), [4]bool{true, true, true, true}},
		{"turned Ready", ds(1, metav1.ConditionFalse), ds(1, metav1.ConditionTrue), [4]bool{false, true, true, true}},
		{"Ready for the first time", ds(1, ""), ds(1, metav1.ConditionTrue), [4]bool{false, true, true, true}},
		{"turned not Ready", ds(1, metav1.ConditionTrue), ds(1, metav1.ConditionFalse), [4]bool{}},
		{"a status refresh", ds(1, metav1.ConditionTrue), ds(1, metav1.ConditionTrue), [4]bool{}},
		{"still not Ready", ds(1, metav1.ConditionFalse), ds(1, metav1.ConditionFalse), [4]bool{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			which, ok := dataStoreUpdateReaches(c.old, c.new)
			for i, tc := range []*kamajiv1alpha1.TenantControlPlane{provisioned, failed, fresh, migrating} {
				got := ok && (which == nil || which(tc))
				if got != c.reached[i] {
					t.Errorf("%s TCP enqueued: %v, want %v", []string{"a provisioned", "a failed", "a new", "a migrating"}[i], got, c.reached[i])
				}
			}
		})
	}
}
