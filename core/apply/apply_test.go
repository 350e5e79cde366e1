package apply

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func TestApplyConfigurationHasNoNullsNorServerFields(t *testing.T) {
	tcp := &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "b", ResourceVersion: "7", UID: "u"}}
	s := runtime.NewScheme()
	if err := kamajiv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	u, err := toApplyConfiguration(tcp, s)
	if err != nil {
		t.Fatal(err)
	}
	if u.GetAPIVersion() != "kamaji.clastix.io/v1alpha1" || u.GetKind() != "TenantControlPlane" {
		t.Fatalf("GVK not set: %s %s", u.GetAPIVersion(), u.GetKind())
	}
	if u.GetResourceVersion() != "" || u.GetUID() != "" {
		t.Fatalf("server fields declared: %v", u.Object["metadata"])
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(u.Object, "status", "kubernetesResources", "deployment", "lastUpdate"); found {
		t.Fatal("a zero timestamp was declared as null")
	}
}

func TestPruneEmptyMaps(t *testing.T) {
	st := map[string]any{
		"addons":     map[string]any{"konnectivity": map[string]any{"enabled": false, "certificate": map[string]any{}, "agent": map[string]any{"x": map[string]any{}}}},
		"conditions": []any{map[string]any{"type": "Ready", "extra": map[string]any{}}},
	}
	pruneEmptyMaps(st)
	k := st["addons"].(map[string]any)["konnectivity"].(map[string]any)
	if _, ok := k["certificate"]; ok {
		t.Error("an empty map was kept")
	}
	if _, ok := k["agent"]; ok {
		t.Error("a map of empty maps was kept")
	}
	if k["enabled"] != false {
		t.Error("a false value was dropped")
	}
	if _, ok := st["conditions"].([]any)[0].(map[string]any)["extra"]; ok {
		t.Error("an empty map in a list element was kept")
	}
}
