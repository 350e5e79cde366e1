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

// Our containers leave the end of their log in their status when they exit with an error (the
// TCP's status shows its last line); the user's and the addons' keep their own policy.
func TestComponentTerminationMessage(t *testing.T) {
	in := kineInput()
	in.TCP.Spec.ControlPlane.Deployment.AdditionalContainers = []corev1.Container{{Name: "user", Image: "u"}}
	in.Additions.Containers = []corev1.Container{{Name: "addon", Image: "a"}}
	d := mustBuild(t, in)
	for _, name := range []string{APIServerContainer, ControllerManagerContainer, SchedulerContainer, KineContainer} {
		if got := findContainer(t, d, name).TerminationMessagePolicy; got != corev1.TerminationMessageFallbackToLogsOnError {
			t.Errorf("%s terminationMessagePolicy = %q", name, got)
		}
	}
	for _, name := range []string{"user", "addon"} {
		if got := findContainer(t, d, name).TerminationMessagePolicy; got != "" {
			t.Errorf("%s got terminationMessagePolicy %q", name, got)
		}
	}
}

// containerSecurityContexts gives each control-plane container its own security context; a
// container without one keeps the shared securityContext; kine and addon containers are not
// control-plane components and keep theirs.
func TestContainerSecurityContexts(t *testing.T) {
	shared := &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false)}
	api := &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), ReadOnlyRootFilesystem: ptr.To(true)}
	cm := &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	sched := &corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}

	tests := []struct {
		name   string
		shared *corev1.SecurityContext
		own    *kamajiv1alpha1.ControlPlaneContainerSecurityContexts
		want   map[string]*corev1.SecurityContext
	}{
		{
			name: "none",
			want: map[string]*corev1.SecurityContext{APIServerContainer: nil, ControllerManagerContainer: nil, SchedulerContainer: nil, KineContainer: nil},
		},
		{
			name: "each component its own",
			own:  &kamajiv1alpha1.ControlPlaneContainerSecurityContexts{APIServer: api, ControllerManager: cm, Scheduler: sched},
			want: map[string]*corev1.SecurityContext{APIServerContainer: api, ControllerManagerContainer: cm, SchedulerContainer: sched, KineContainer: nil},
		},
		{
			name:   "own replaces shared, the others keep shared",
			shared: shared,
			own:    &kamajiv1alpha1.ControlPlaneContainerSecurityContexts{APIServer: api},
			want:   map[string]*corev1.SecurityContext{APIServerContainer: api, ControllerManagerContainer: shared, SchedulerContainer: shared, KineContainer: shared},
		},
		{
			name:   "an empty block keeps shared",
			shared: shared,
			own:    &kamajiv1alpha1.ControlPlaneContainerSecurityContexts{},
			want:   map[string]*corev1.SecurityContext{APIServerContainer: shared, ControllerManagerContainer: shared, SchedulerContainer: shared, KineContainer: shared},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := kineInput()
			in.Additions.Containers = []corev1.Container{{Name: "konnectivity-server", Image: "k"}}
			dep := &in.TCP.Spec.ControlPlane.Deployment
			dep.SecurityContext, dep.ContainerSecurityContexts = tt.shared, tt.own
			d := mustBuild(t, in)
			for name, want := range tt.want {
				if got := findContainer(t, d, name).SecurityContext; !equality.Semantic.DeepEqual(got, want) {
					t.Errorf("%s securityContext = %v, want %v", name, got, want)
				}
			}
			// The addon's container is the addon's (and the core's konnectivity step's) business.
			if got := findContainer(t, d, "konnectivity-server").SecurityContext; got != nil {
				t.Errorf("addon container got securityContext %v", got)
			}
		})
	}
}

// A memory limit tells each of our Go components its runtime's share of it (GOMEMLIMIT); without
// one, or with requests only, the runtime is left unbounded, as upstream runs it.
func TestComponentGoMemLimit(t *testing.T) {
	in := kineInput()
	limit := func(mem string) *corev1.ResourceRequirements {
		return &corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(mem)},
		}
	}
	in.TCP.Spec.ControlPlane.Deployment.Resources = &kamajiv1alpha1.ControlPlaneComponentsResources{
		APIServer:         limit("1Gi"),
		ControllerManager: limit("500M"),
		Scheduler:         limit("100Mi"),
		Kine:              limit("256Mi"),
	}
	d := mustBuild(t, in)
	for name, want := range map[string]string{
		APIServerContainer:         "966367641", // 90% of 1073741824, rounded down
		ControllerManagerContainer: "450000000",
		SchedulerContainer:         "94371840",
		KineContainer:              "241591910",
	} {
		c := findContainer(t, d, name)
		if got := goMemLimitEnv(c); got != want {
			t.Errorf("%s GOMEMLIMIT = %q, want %q (env %v)", name, got, want, c.Env)
		}
	}
	// The apiserver keeps its own variables beside it.
	if env := findContainer(t, d, APIServerContainer).Env; len(env) < 2 || env[0].Name != "GOGC" {
		t.Errorf("kube-apiserver env = %v, want GOGC first and GOMEMLIMIT after", env)
	}

	in.TCP.Spec.ControlPlane.Deployment.Resources = &kamajiv1alpha1.ControlPlaneComponentsResources{
		APIServer: requests("1"), // CPU only
		Scheduler: &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}},
	}
	d = mustBuild(t, in)
	for _, name := range []string{APIServerContainer, ControllerManagerContainer, SchedulerContainer, KineContainer} {
		if c := findContainer(t, d, name); goMemLimitEnv(c) != "" {
			t.Errorf("%s has GOMEMLIMIT without a memory limit: %v", name, c.Env)
		}
	}
	if env := findContainer(t, d, SchedulerContainer).Env; env != nil {
		t.Errorf("scheduler env = %v, want none", env)
	}
}

func goMemLimitEnv(c corev1.Container) string {
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" {
			return e.Value
		}
	}
	return ""
}
