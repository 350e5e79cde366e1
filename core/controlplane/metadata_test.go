package controlplane

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
)

func TestMerge(t *testing.T) {
	tests := []struct {
		name         string
		theirs, ours map[string]string
		want         map[string]string
	}{
		{"both empty stays absent", nil, map[string]string{}, nil},
		{"theirs only", map[string]string{"a": "1"}, nil, map[string]string{"a": "1"}},
		{"ours win on conflict", map[string]string{"a": "user", "b": "2"}, map[string]string{"a": "core"}, map[string]string{"a": "core", "b": "2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := merge(tt.theirs, tt.ours)
			if !equality.Semantic.DeepEqual(got, tt.want) || (tt.want == nil) != (got == nil) {
				t.Errorf("merge = %#v, want %#v", got, tt.want)
			}
			if got != nil {
				got["new"] = "x"
				if _, ok := tt.theirs["new"]; ok {
					t.Error("result aliases its input")
				}
			}
		})
	}
}
