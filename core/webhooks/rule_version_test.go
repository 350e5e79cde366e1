package webhooks

import (
	"strings"
	"testing"
)

func TestCheckVersion(t *testing.T) {
	for _, tc := range []struct{ from, to, wantErr string }{
		{"", "v1.37.2", ""},
		{"", "1.35.0", ""},
		{"", "v1.34.9", "older than v1.35"},
		{"", "v1.38.0", "newer than v1.37"},
		{"", "latest", "semantic version"},
		{"v1.36.1", "v1.37.2", ""},
		{"v1.36.1", "v1.36.1", ""},
		{"v1.37.2", "v1.36.4", "downgrading"},
		{"v1.35.0", "v1.37.2", "one minor version at a time"},
	} {
		err := CheckVersion(tc.from, tc.to)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s -> %s: unexpected error %v", tc.from, tc.to, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s -> %s: got %v, want an error containing %q", tc.from, tc.to, err, tc.wantErr)
		}
	}
}
