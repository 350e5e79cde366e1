package controlplane

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// everyFlagInput sets everything that adds a core flag: admission plugins, etcd overrides.
func everyFlagInput(version string) Input {
	in := etcdInput()
	in.TCP.Spec.Kubernetes.Version = version
	in.TCP.Spec.Kubernetes.AdmissionControllers = kamajiv1alpha1.AdmissionControllers{"NodeRestriction"}
	in.EtcdServersOverrides = []string{"/events#https://events-0:2379"}
	return in
}

func flagNames(args []string) []string {
	names := make([]string, 0, len(args))
	for _, a := range args {
		names = append(names, flagName(a))
	}
	slices.Sort(names)
	return names
}

// Each minor of the tested window, and one below it, gets exactly the flags kubeadm gives that
// minor: the same list from v1.30 to v1.37 (see versions.go), with the same values.
func TestArgsPerMinor(t *testing.T) {
	reference := mustBuild(t, everyFlagInput("v1.37.2"))
	for minor := 28; minor <= 37; minor++ {
		version := fmt.Sprintf("v1.%d.3", minor)
		t.Run(version, func(t *testing.T) {
			d := mustBuild(t, everyFlagInput(version))
			for _, name := range []string{APIServerContainer, ControllerManagerContainer, SchedulerContainer} {
				got := findContainer(t, d, name).Args
				if want := findContainer(t, reference, name).Args; !slices.Equal(got, want) {
					t.Errorf("%s args at %s:\n got %q\nwant %q", name, version, got, want)
				}
				if want := slices.Sorted(maps.Keys(coreFlags[name])); !slices.Equal(flagNames(got), want) {
					t.Errorf("%s flags at %s:\n got %q\nwant %q", name, version, flagNames(got), want)
				}
				if img := findContainer(t, d, name).Image; img != "registry.k8s.io/"+name+":"+version {
					t.Errorf("%s image %s", name, img)
				}
			}
		})
	}
}

// A flag added to the core must say from which minor it exists: every core flag is listed.
func TestEveryCoreFlagHasAMinor(t *testing.T) {
	for _, in := range []Input{everyFlagInput("v1.37.2"), kineInput()} {
		d := mustBuild(t, in)
		for _, name := range []string{APIServerContainer, ControllerManagerContainer, SchedulerContainer} {
			for _, f := range flagNames(findContainer(t, d, name).Args) {
				if _, ok := coreFlags[name][f]; !ok {
					t.Errorf("%s --%s is not in coreFlags: add it with the first minor that has it", name, f)
				}
			}
		}
	}
}

// A core flag newer than the tenant's minor is not given to it; the user's extra args are
// passed as they are.
func TestForMinorDropsNewerFlags(t *testing.T) {
	saved := coreFlags[SchedulerContainer]["leader-elect"]
	coreFlags[SchedulerContainer]["leader-elect"] = 33
	t.Cleanup(func() { coreFlags[SchedulerContainer]["leader-elect"] = saved })

	for version, want := range map[string]bool{"v1.32.9": false, "v1.33.0": true, "v1.37.2": true, "not-a-version": true} {
		in := etcdInput()
		in.TCP.Spec.Kubernetes.Version = version
		if got := hasFlag(findContainer(t, mustBuild(t, in), SchedulerContainer), "leader-elect"); got != want {
			t.Errorf("%s: --leader-elect present %v, want %v", version, got, want)
		}
	}
	in := etcdInput()
	in.TCP.Spec.Kubernetes.Version = "v1.30.0"
	in.TCP.Spec.ControlPlane.Deployment.ExtraArgs = &kamajiv1alpha1.ControlPlaneExtraArgs{Scheduler: []string{"--leader-elect=false"}}
	if got := flag(t, findContainer(t, mustBuild(t, in), SchedulerContainer), "leader-elect"); got != "false" {
		t.Errorf("the user's --leader-elect at v1.30: %q", got)
	}
}
