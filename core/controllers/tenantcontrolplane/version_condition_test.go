package tenantcontrolplane

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func TestVersionCondition(t *testing.T) {
	for version, want := range map[string]struct {
		status  metav1.ConditionStatus
		reason  string
		message string
	}{
		"v1.30.14": {metav1.ConditionTrue, ReasonVersionTested, "v1.30.14 is inside the tested window (v1.30 to v1.37)"},
		"v1.37.2":  {metav1.ConditionTrue, ReasonVersionTested, "inside the tested window"},
		"v1.28.15": {metav1.ConditionFalse, ReasonVersionUntested, "v1.28.15 is older than the versions this release is tested with (v1.30 to v1.37)"},
	} {
		tcp := &kamajiv1alpha1.TenantControlPlane{}
		tcp.Spec.Kubernetes.Version = version
		p := &pass{tcp: tcp, now: time.Now()}
		computeStatus(p, nil)
		c := meta.FindStatusCondition(p.status.Conditions, kamajiv1alpha1.ConditionKubernetesVersionTested)
		if c == nil || c.Status != want.status || c.Reason != want.reason || !strings.Contains(c.Message, want.message) {
			t.Errorf("%s: condition %+v, want %s %s %q", version, c, want.status, want.reason, want.message)
		}
	}
}
