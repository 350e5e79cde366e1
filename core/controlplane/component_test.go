package controlplane

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func requests(cpu string) *corev1.ResourceRequirements {
	return &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}
}

func TestComponentResources(t *testing.T) {
	in := kineInput()
	res := &kamajiv1alpha1.ControlPlaneComponentsResources{
		APIServer:         requests("500m"),
		ControllerManager: requests("200m"),
		Scheduler:         requests("100m"),
		Kine:              requests("50m"),
	}
	in.TCP.Spec.ControlPlane.Deployment.Resources = res
	d := mustBuild(t, in)
	for name, want := range map[string]*corev1.ResourceRequirements{
		APIServerContainer:         res.APIServer,
		ControllerManagerContainer: res.ControllerManager,
		SchedulerContainer:         res.Scheduler,
		KineContainer:              res.Kine,
	} {
		if got := findContainer(t, d, name).Resources; !equality.Semantic.DeepEqual(got, *want) {
			t.Errorf("%s resources = %+v, want %+v", name, got, *want)
		}
	}

	// Unset per component means no requirements, not someone else's.
	in.TCP.Spec.ControlPlane.Deployment.Resources = &kamajiv1alpha1.ControlPlaneComponentsResources{APIServer: requests("1")}
	d = mustBuild(t, in)
	if got := findContainer(t, d, SchedulerContainer).Resources; !equality.Semantic.DeepEqual(got, corev1.ResourceRequirements{}) {
		t.Errorf("scheduler resources = %+v, want none", got)
	}
}

// The security context goes on each of our containers, not on the user's or the addons'.
func TestComponentSecurityContext(t *testing.T) {
	in := kineInput()
	sc := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	in.TCP.Spec.ControlPlane.Deployment.SecurityContext = sc
	in.TCP.Spec.ControlPlane.Deployment.AdditionalContainers = []corev1.Container{{Name: "user", Image: "u"}}
	in.Additions.Containers = []corev1.Container{{Name: "addon", Image: "a"}}
	d := mustBuild(t, in)
	for _, name := range []string{APIServerContainer, ControllerManagerContainer, SchedulerContainer, KineContainer} {
		if got := findContainer(t, d, name).SecurityContext; !equality.Semantic.DeepEqual(got, sc) {
			t.Errorf("%s securityContext = %+v", name, got)
		}
	}
	for _, name := range []string{"user", "addon"} {
		if got := findContainer(t, d, name).SecurityContext; got != nil {
			t.Errorf("%s got our securityContext", name)
		}
	}
}
