package webhooks

import (
	"slices"
	"testing"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// The index admission looks a new TCP's schema and user up in names every slice a TCP holds or
// will hold: by spec (main DataStore and overrides) and by what its status recorded (a former
// DataStore keeps its slice until deprovisioned).
func TestSliceIndexValues(t *testing.T) {
	tcp := &kamajiv1alpha1.TenantControlPlane{}
	tcp.Spec.DataStore, tcp.Spec.DataStoreSchema, tcp.Spec.DataStoreUsername = "main", "s", "u"
	tcp.Spec.DataStoreOverrides = []kamajiv1alpha1.DataStoreOverride{{Resource: "/events", DataStore: "events"}}
	tcp.Status.Storage.DataStoreName = "old"
	tcp.Status.Storage.Setup = kamajiv1alpha1.DataStoreSetupStatus{Schema: "s_old", User: "u_old"}
	tcp.Status.Storage.Overrides = []kamajiv1alpha1.StorageOverrideStatus{{DataStoreName: "events", Schema: "s", User: "u"}}

	got := SliceIndexValues(tcp)
	slices.Sort(got)
	want := []string{"schema:events/s", "schema:main/s", "schema:old/s_old", "user:events/u", "user:main/u", "user:old/u_old"}
	if !slices.Equal(got, want) {
		t.Errorf("SliceIndexValues = %q, want %q (each once)", got, want)
	}
	if v := SliceIndexValues(&kamajiv1alpha1.DataStore{}); v != nil {
		t.Errorf("a DataStore: %q, want none", v)
	}
}
