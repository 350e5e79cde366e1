package controlplane

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func withProfile(in Input, v string) Input {
	in.TCP.Annotations = map[string]string{kamajiv1alpha1.ControlPlaneProfileAnnotation: v}
	return in
}

// The lean profile turns the apiserver's watch cache and API Priority and Fairness off and
// lowers its GOGC, makes the controller manager and scheduler renew their leases less often,
// and touches nothing else; "default" is the same as no annotation.
func TestLeanProfile(t *testing.T) {
	plain := mustBuild(t, etcdInput())
	if d := mustBuild(t, withProfile(etcdInput(), ProfileDefault)); !reflect.DeepEqual(d, plain) {
		t.Error(`profile "default" changed the Deployment`)
	}
	lean := mustBuild(t, withProfile(etcdInput(), ProfileLean))
	api := findContainer(t, lean, APIServerContainer)
	for _, f := range []string{"--watch-cache=false", "--enable-priority-and-fairness=false", "--etcd-count-metric-poll-period=0"} {
		if !slices.Contains(api.Args, f) {
			t.Errorf("lean kube-apiserver lacks %s: %q", f, api.Args)
		}
	}
	if api.Env[0].Name != "GOGC" || api.Env[0].Value != LeanAPIServerGOGC {
		t.Errorf("lean kube-apiserver env = %+v, want GOGC=%s first", api.Env, LeanAPIServerGOGC)
	}
	// Apart from those flags and GOGC, the pod is the default one.
	api.Args = slices.DeleteFunc(slices.Clone(api.Args), func(a string) bool { return slices.Contains(leanAPIServerArgs, a) })
	api.Env = slices.Clone(api.Env)
	api.Env[0].Value = APIServerGOGC
	if base := findContainer(t, plain, APIServerContainer); !reflect.DeepEqual(api, base) {
		t.Errorf("lean kube-apiserver differs beyond its flags:\n got %+v\nwant %+v", api, base)
	}
	// The controller manager and the scheduler renew their leases less often (the default
	// profile every 5 s, the lean one every 10 s with a longer lease), run on one Go processor,
	// and differ in nothing else.
	for _, name := range []string{ControllerManagerContainer, SchedulerContainer} {
		c := findContainer(t, lean, name)
		if want := []corev1.EnvVar{{Name: "GOMAXPROCS", Value: "1"}}; !reflect.DeepEqual(c.Env, want) {
			t.Errorf("lean %s env = %+v, want %+v", name, c.Env, want)
		}
		c.Env = nil
		for _, f := range leanLeaderElectionArgs {
			if !slices.Contains(c.Args, f) {
				t.Errorf("lean %s lacks %s: %q", name, f, c.Args)
			}
		}
		base := findContainer(t, plain, name)
		if !slices.Contains(base.Args, "--leader-elect-retry-period=5s") {
			t.Errorf("default %s lacks --leader-elect-retry-period=5s: %q", name, base.Args)
		}
		isLease := func(a string) bool { return strings.HasPrefix(a, "--leader-elect-") }
		c.Args = slices.DeleteFunc(slices.Clone(c.Args), isLease)
		base.Args = slices.DeleteFunc(slices.Clone(base.Args), isLease)
		if !reflect.DeepEqual(c, base) {
			t.Errorf("lean %s differs beyond its lease flags:\n got %+v\nwant %+v", name, c, base)
		}
	}
}

// A CPU limit leaves the lean controller manager's and scheduler's processors to Go; a
// request alone does not.
func TestLeanProfileGoMaxProcsYieldsToACPULimit(t *testing.T) {
	in := withProfile(etcdInput(), ProfileLean)
	in.TCP.Spec.ControlPlane.Deployment.Resources = &kamajiv1alpha1.ControlPlaneComponentsResources{
		ControllerManager: &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}},
		Scheduler:         &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}},
	}
	dep := mustBuild(t, in)
	if cm := findContainer(t, dep, ControllerManagerContainer); slices.ContainsFunc(cm.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMAXPROCS" }) {
		t.Errorf("the controller manager with a CPU limit has %+v", cm.Env)
	}
	if sched := findContainer(t, dep, SchedulerContainer); !slices.Contains(sched.Env, corev1.EnvVar{Name: "GOMAXPROCS", Value: "1"}) {
		t.Errorf("the scheduler with a CPU request only has %+v, want GOMAXPROCS=1", sched.Env)
	}
}

// A user's flag wins over the profile's.
func TestLeanProfileYieldsToExtraArgs(t *testing.T) {
	in := withProfile(etcdInput(), ProfileLean)
	in.TCP.Spec.ControlPlane.Deployment.ExtraArgs = &kamajiv1alpha1.ControlPlaneExtraArgs{APIServer: []string{"--watch-cache=true"}}
	api := findContainer(t, mustBuild(t, in), APIServerContainer)
	if !slices.Contains(api.Args, "--watch-cache=true") || slices.Contains(api.Args, "--watch-cache=false") {
		t.Errorf("extraArgs must override the profile: %q", api.Args)
	}
	if !slices.Contains(api.Args, "--enable-priority-and-fairness=false") {
		t.Errorf("the profile's other flag is gone: %q", api.Args)
	}
	in.TCP.Spec.ControlPlane.Deployment.ExtraArgs.Scheduler = []string{"--leader-elect-retry-period=3s"}
	sched := findContainer(t, mustBuild(t, in), SchedulerContainer)
	if !slices.Contains(sched.Args, "--leader-elect-retry-period=3s") || slices.Contains(sched.Args, "--leader-elect-retry-period=10s") ||
		!slices.Contains(sched.Args, "--leader-elect-lease-duration=60s") {
		t.Errorf("the scheduler's extraArgs must override the profile's flag by name, and only it: %q", sched.Args)
	}
}

// An unknown profile builds nothing and names the annotation and the profiles there are.
func TestUnknownProfile(t *testing.T) {
	_, err := Build(withProfile(etcdInput(), "tiny"))
	if err == nil {
		t.Fatal("Build accepted an unknown profile")
	}
	for _, want := range []string{kamajiv1alpha1.ControlPlaneProfileAnnotation, `"tiny"`, "lean"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}
