package tenantcontrolplane

import (
	"errors"
	"strings"
	"testing"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/pluginhost"
)

// An addon (or driver) no configured plugin serves only comes with a manager restart: the pass
// fails into the controller's exponential backoff, not a fixed-interval retry, and says so.
func TestPluginNotConfiguredBacksOff(t *testing.T) {
	err := pluginFailure(kamajiv1alpha1.ConditionAddonsReady, &pluginhost.Error{Plugin: "coredns", Reason: pluginhost.ReasonNotConfigured, Err: errors.New("no plugin serves addon coredns")})
	res, got := resultFor(err)
	if got == nil || res.RequeueAfter != 0 {
		t.Fatalf("resultFor gave %+v, %v: want the error (exponential backoff) and no fixed RequeueAfter", res, got)
	}
	se, _ := asStepError(err)
	if se == nil || se.reason != pluginhost.ReasonNotConfigured || !strings.Contains(se.Error(), retrying) {
		t.Fatalf("condition from %v: want reason %s and a message saying it retries with backoff", err, pluginhost.ReasonNotConfigured)
	}
	// A plugin the host is restarting keeps the host's own delay: a wait on its progress.
	err = pluginFailure(kamajiv1alpha1.ConditionAddonsReady, &pluginhost.Error{Plugin: "coredns", Reason: pluginhost.ReasonRestarting, Err: errors.New("restarting"), RetryAfter: 3e9})
	if res, got := resultFor(err); got != nil || res.RequeueAfter != 3e9 {
		t.Fatalf("a restarting plugin: resultFor gave %+v, %v, want RequeueAfter 3s", res, got)
	}
}
