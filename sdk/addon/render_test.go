package addon

import (
	"errors"
	"math"
	"testing"

	"github.com/openhcp/kamaji/sdk"
)

func TestObjectLabels(t *testing.T) {
	l := ObjectLabels("coredns", map[string]string{"k8s-app": "kube-dns"})
	if l[LabelManagedBy] != "kamaji" || l[LabelAddon] != "coredns" || l["k8s-app"] != "kube-dns" || len(l) != 3 {
		t.Errorf("labels %v", l)
	}
}

func TestEncodeObjectDropsStatusAndIsStable(t *testing.T) {
	obj := struct {
		Kind   string            `json:"kind"`
		Data   map[string]string `json:"data"`
		Status map[string]string `json:"status"`
	}{"ConfigMap", map[string]string{"b": "2", "a": "1"}, map[string]string{"phase": "x"}}
	got, err := EncodeObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"data":{"a":"1","b":"2"},"kind":"ConfigMap"}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestKubernetesMinor(t *testing.T) {
	for in, want := range map[string]int{"v1.37.2": 37, "1.36.0": 36, "v1.35.1-rc.0": 35} {
		if got, err := KubernetesMinor(in); err != nil || got != want {
			t.Errorf("%s: %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"v2.1.0", "latest", "v1.37"} {
		var fe *sdk.FieldError
		if _, err := KubernetesMinor(bad); !errors.As(err, &fe) || fe.Field != "tenant.kubernetesVersion" {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestIntParam(t *testing.T) {
	for _, v := range []any{float64(3), 3, int32(3), int64(3)} {
		if got, err := IntParam(v, "replicas", 1); err != nil || got != 3 {
			t.Errorf("%T: %d, %v", v, got, err)
		}
	}
	for _, bad := range []any{0.5, float64(0), "3", nil, float64(1 << 40)} {
		var fe *sdk.FieldError
		if _, err := IntParam(bad, "replicas", 1); !errors.As(err, &fe) || fe.Field != "replicas" {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

// GOMEMLIMIT is 90% of the limit, rounded down, without overflowing on the largest limits; no
// limit (zero or less) gives none.
func TestGoMemLimit(t *testing.T) {
	for _, tc := range []struct {
		limit int64
		want  int64
		ok    bool
	}{
		{1 << 30, 966367641, true},
		{500_000_000, 450_000_000, true},
		{math.MaxInt64, math.MaxInt64 / 100 * 90, true},
		{0, 0, false},
		{-1, 0, false},
	} {
		if got, ok := GoMemLimit(tc.limit); got != tc.want || ok != tc.ok {
			t.Errorf("GoMemLimit(%d) = %d, %v; want %d, %v", tc.limit, got, ok, tc.want, tc.ok)
		}
	}
}
