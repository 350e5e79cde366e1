package controlplane

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// Control-plane profiles, the values of kamajiv1alpha1.ControlPlaneProfileAnnotation.
const (
	ProfileDefault = "default"
	ProfileLean    = "lean"
)

// Profile is the TCP's control-plane profile (ProfileDefault without the annotation), or an
// error naming the annotation when its value is not a profile.
func Profile(tcp *kamajiv1alpha1.TenantControlPlane) (string, error) {
	p, err := ParseProfile(tcp.Annotations[kamajiv1alpha1.ControlPlaneProfileAnnotation])
	if err != nil {
		return "", fmt.Errorf("annotation %s: %w", kamajiv1alpha1.ControlPlaneProfileAnnotation, err)
	}
	return p, nil
}

// ParseProfile checks a profile's name; empty is ProfileDefault.
func ParseProfile(v string) (string, error) {
	switch v {
	case "", ProfileDefault:
		return ProfileDefault, nil
	case ProfileLean:
		return ProfileLean, nil
	}
	return "", fmt.Errorf("%q is not a profile (%s or %s)", v, ProfileDefault, ProfileLean)
}

// leanAPIServerArgs trade two kube-apiserver features for memory (measured in
// docs/operations.md, Lean control planes):
//   - without the watch cache, every list and watch is served by the datastore, which holds
//     one more watch per watcher: fine for a tenant with few clients, a load on a shared
//     datastore for a busy one;
//   - without API Priority and Fairness, the apiserver's only protection from a flood of
//     requests is --max-requests-inflight and --max-mutating-requests-inflight.
//
// And one for the shared datastore: the apiserver counts the objects of each resource once a
// minute, for its apiserver_storage_objects metric and for API Priority and Fairness's cost of a
// list. Without the watch cache each count is a scan of the datastore: a third of what an idle
// lean tenant asked of it (v1.37.2, 2026-12-05: 116.5 requests a minute, 78 without). With API
// Priority and Fairness off only the metric is lost.
//
// They come before the addons' and the user's flags, which override them by name. The profile
// also runs kube-apiserver with GOGC=LeanAPIServerGOGC, and the controller manager and the
// scheduler with leanLeaderElectionArgs and profileGoEnv.
var leanAPIServerArgs = []string{
	"--enable-priority-and-fairness=false",
	"--watch-cache=false",
	"--etcd-count-metric-poll-period=0",
}

// LeanAPIServerGOGC is kube-apiserver's Go collector target in the lean profile: an idle bare
// kube-apiserver (2026-12-03) held about 20 MB less with it than with APIServerGOGC, for a
// collection twice as often under load.
const LeanAPIServerGOGC = "25"

// apiServerGOGC is kube-apiserver's GOGC for the input's profile.
func apiServerGOGC(in Input) string {
	if p, _ := Profile(in.TCP); p == ProfileLean {
		return LeanAPIServerGOGC
	}
	return APIServerGOGC
}

// leanLeaderElectionArgs: the controller manager and the scheduler renew their leader lease
// every 10 s rather than every 2 s, each renewal a read and a write through the apiserver to
// the datastore: less idle CPU (measured in docs/operations.md, Lean control planes). The
// price: the controller manager does not give its lease up when it stops, so after a rollout
// the new one waits up to 60 s, not 15 s, for the old lease to lapse before its controllers
// run; the scheduler gives its lease up, so its successor takes over within 10 s.
var leanLeaderElectionArgs = []string{
	"--leader-elect-lease-duration=60s",
	"--leader-elect-renew-deadline=40s",
	"--leader-elect-retry-period=10s",
}

// defaultLeaderElectionArgs: in the default profile the controller manager and the scheduler
// renew their lease every 5 s, not every 2 s (upstream's), keeping its duration (15 s) and
// renewal deadline (10 s). Those renewals were most of what an idle tenant wrote to its
// datastore: 58 of 70 writes a minute (bare v1.37.2 control plane, 2026-12-05). The price: a
// successor takes the lease up to 5 s later (after a rollout, the controller manager's lease
// lapses 15 s after its last renewal and its successor sees it within 5 s, not 2 s; the
// scheduler gives its lease up when it stops).
var defaultLeaderElectionArgs = []string{
	"--leader-elect-retry-period=5s",
}

// profileGoEnv is the profile's Go runtime environment of the controller manager or the
// scheduler, given the component's resources. In the lean profile each runs on one Go processor
// (GOMAXPROCS=1): an idle one wakes for its timers many times a second (every work queue's
// metrics every 500 ms, the attach-detach reconciler every 100 ms), and with a second processor
// the Go scheduler wakes another thread to look for work each time. Measured on the local plane
// (2026-12-05, v1.37.2, two idle tenants, two 2-minute windows): the controller manager used
// 1.05-1.11% of a core instead of 1.33-1.42%, the scheduler 0.27-0.30% instead of 0.33-0.34%.
// The price: neither uses more than one core when busy (the controller manager's requests are
// limited to 20 a second by default anyway; the scheduler filters and scores nodes one at a
// time, which a tenant of many nodes scheduling many pods at once would feel). A component
// given a CPU limit is left to Go: a binary built with Go 1.25 or later sizes its processors
// from the limit, an older one uses every core of the node.
func profileGoEnv(in Input, res *corev1.ResourceRequirements) []corev1.EnvVar {
	if p, _ := Profile(in.TCP); p != ProfileLean {
		return nil
	}
	if res != nil {
		if _, limited := res.Limits[corev1.ResourceCPU]; limited {
			return nil
		}
	}
	return []corev1.EnvVar{{Name: "GOMAXPROCS", Value: "1"}}
}

// profileLeaderElectionArgs are the profile's flags of the controller manager and scheduler.
func profileLeaderElectionArgs(in Input) []string {
	if p, _ := Profile(in.TCP); p == ProfileLean {
		return leanLeaderElectionArgs
	}
	return defaultLeaderElectionArgs
}

// profileAPIServerArgs are the profile's kube-apiserver flags (validate has checked the
// annotation: an unknown profile adds none).
func profileAPIServerArgs(in Input) []string {
	if p, _ := Profile(in.TCP); p == ProfileLean {
		return leanAPIServerArgs
	}
	return nil
}
