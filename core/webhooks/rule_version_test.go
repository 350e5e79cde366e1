package webhooks

import (
	"context"
	"strings"
	"testing"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func TestRuleVersion(t *testing.T) {
	tcp := func(spec, installed string) *kamajiv1alpha1.TenantControlPlane {
		o := &kamajiv1alpha1.TenantControlPlane{}
		o.Spec.Kubernetes.Version = spec
		o.Status.Kubernetes.Version.Version = installed
		return o
	}
	for _, tc := range []struct {
		name     string
		old, new *kamajiv1alpha1.TenantControlPlane
		wantErr  string
		warning  string
	}{
		{name: "inside the window", new: tcp("v1.34.2", ""), warning: ""},
		{name: "below the window: a warning", new: tcp("v1.28.4", ""), warning: "older than the versions this release is tested with"},
		{name: "above the newest minor", new: tcp("v1.38.0", ""), wantErr: "newer than v1.37"},
		{name: "patch down from the installed version", old: tcp("v1.35.4", "v1.35.4"), new: tcp("v1.35.0", "v1.35.4")},
		{name: "minor down", old: tcp("v1.36.1", "v1.36.1"), new: tcp("v1.35.9", "v1.36.1"), wantErr: "downgrading"},
		{name: "counted from the installed version", old: tcp("v1.36.0", "v1.35.2"), new: tcp("v1.37.0", "v1.35.2"), wantErr: "one minor version at a time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := &tcpRuleContext{Old: tc.old, New: tc.new}
			errs := ruleVersion(context.Background(), rc)
			switch {
			case tc.wantErr == "" && len(errs) > 0:
				t.Fatalf("unexpected: %v", errs)
			case tc.wantErr != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.wantErr) || errs[0].Field != "spec.kubernetes.version"):
				t.Fatalf("got %v, want %q on spec.kubernetes.version", errs, tc.wantErr)
			}
			got := strings.Join(rc.Warnings, "\n")
			if (tc.warning == "") != (got == "") || !strings.Contains(got, tc.warning) {
				t.Errorf("warnings %q, want %q", got, tc.warning)
			}
		})
	}
}
