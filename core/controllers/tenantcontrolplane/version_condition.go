package tenantcontrolplane

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/kubeversion"
)

// Reasons of the KubernetesVersionTested condition.
const (
	ReasonVersionTested   = "TestedVersion"
	ReasonVersionUntested = "UntestedVersion"
)

// setVersionCondition says whether spec.kubernetes.version is inside the window this release
// is tested with. Outside it (older: admission accepts any version, as Kamaji) the tenant runs
// with what the oldest tested minor gets; the condition, like the admission warning, says so.
func setVersionCondition(p *pass) {
	v := p.tcp.Spec.Kubernetes.Version
	if kubeversion.Tested(v) {
		p.setCondition(kamajiv1alpha1.ConditionKubernetesVersionTested, metav1.ConditionTrue, ReasonVersionTested,
			fmt.Sprintf("%s is inside the tested window (%s)", v, kubeversion.Window()))
		return
	}
	msg := kubeversion.Warning(v)
	if msg == "" {
		msg = fmt.Sprintf("%s is outside the tested window (%s)", v, kubeversion.Window())
	}
	p.setCondition(kamajiv1alpha1.ConditionKubernetesVersionTested, metav1.ConditionFalse, ReasonVersionUntested, msg)
}
