package controlplane

import (
	"slices"
	"testing"
)

func TestMergeArgs(t *testing.T) {
	tests := []struct {
		name        string
		base, extra []string
		want        []string
	}{
		{
			name:  "extra overrides base by name, output sorted by name",
			base:  []string{"--secure-port=6443", "--authorization-mode=Node,RBAC"},
			extra: []string{"--secure-port=7443"},
			want:  []string{"--authorization-mode=Node,RBAC", "--secure-port=7443"},
		},
		{
			name:  "extra adds new flags, with and without values",
			base:  []string{"--leader-elect=true"},
			extra: []string{"--profiling", "--v=4"},
			want:  []string{"--leader-elect=true", "--profiling", "--v=4"},
		},
		{
			name:  "a valueless flag replaces a valued one and back",
			base:  []string{"--profiling=false"},
			extra: []string{"--profiling"},
			want:  []string{"--profiling"},
		},
		{
			name: "later entry wins within one list",
			base: []string{"--v=1", "--v=2"},
			want: []string{"--v=2"},
		},
		{
			name:  "single and double dash name the same flag",
			base:  []string{"--v=2"},
			extra: []string{"-v=5"},
			want:  []string{"-v=5"},
		},
		{
			name:  "values containing = are kept whole",
			base:  []string{"--feature-gates=A=true"},
			extra: []string{"--feature-gates=A=false,B=true"},
			want:  []string{"--feature-gates=A=false,B=true"},
		},
		{
			name:  "entries are trimmed and empty ones dropped",
			base:  []string{" --a=1 ", "", "  "},
			extra: []string{"--b=2\n"},
			want:  []string{"--a=1", "--b=2"},
		},
		{
			name: "nothing in, nothing out",
			want: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MergeArgs(tt.base, tt.extra)
			if !slices.Equal(got, tt.want) {
				t.Errorf("MergeArgs(%q, %q) = %q, want %q", tt.base, tt.extra, got, tt.want)
			}
		})
	}
}

// Callers rebuild base each time, so dropping an extra arg must drop it from the result, and
// dropping an override must bring the core's value back.
func TestMergeArgsRemoval(t *testing.T) {
	base := []string{"--secure-port=6443", "--leader-elect=true"}

	with := MergeArgs(base, []string{"--secure-port=7443", "--audit-log-path=-"})
	if !slices.Equal(with, []string{"--audit-log-path=-", "--leader-elect=true", "--secure-port=7443"}) {
		t.Fatalf("with extras: %q", with)
	}
	without := MergeArgs(base, nil)
	if !slices.Equal(without, []string{"--leader-elect=true", "--secure-port=6443"}) {
		t.Fatalf("after removing the extras: %q", without)
	}
	if !slices.Equal(base, []string{"--secure-port=6443", "--leader-elect=true"}) {
		t.Fatalf("base modified: %q", base)
	}
}

func TestArgValueAndPort(t *testing.T) {
	args := []string{"--a=1", "--secure-port=7443", "--flag", "--bad-port=http", "--zero=0"}
	if v, ok := argValue(args, "a"); !ok || v != "1" {
		t.Errorf("argValue(a) = %q, %v", v, ok)
	}
	if _, ok := argValue(args, "flag"); ok {
		t.Errorf("a valueless flag has no value")
	}
	if _, ok := argValue(args, "missing"); ok {
		t.Errorf("missing flag found")
	}
	for _, tt := range []struct {
		name string
		want int32
	}{
		{"secure-port", 7443},
		{"missing", 6443},
		{"bad-port", 6443},
		{"zero", 6443},
	} {
		if got := portArg(args, tt.name, 6443); got != tt.want {
			t.Errorf("portArg(%s) = %d, want %d", tt.name, got, tt.want)
		}
	}
}
