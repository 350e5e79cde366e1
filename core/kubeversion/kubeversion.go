// Package kubeversion is the tenant Kubernetes version policy: the minors this release is tested
// with, and how a tenant may move between versions. The admission webhook enforces it (and
// warns), the TenantControlPlane controller reports it in a condition, and the control-plane
// builder and the kubeadm phases pick what each minor needs with it.
//
// As in Kamaji there is no lower bound: a version older than the tested window is accepted
// with a warning, and runs with what the oldest tested minor gets. A minor newer than the
// newest known one is refused: the core cannot know the flags and manifests it will need.
package kubeversion

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/version"
)

// The tested window: v1.OldestTestedMinor to v1.NewestMinor, each with the flags and manifests
// it needs (see core/controlplane and core/tenant/phases). NewestMinor is also the newest minor
// a tenant may run.
const (
	OldestTestedMinor = 30
	NewestMinor       = 37
)

// Window is "v1.30 to v1.37".
func Window() string {
	return fmt.Sprintf("v1.%d to v1.%d", OldestTestedMinor, NewestMinor)
}

// Minor is the minor of a Kubernetes 1.x version ("v1.33.4" and "1.33.4" give 33); ok is false
// when v is not a semantic version of major 1.
func Minor(v string) (minor int, ok bool) {
	parsed, err := version.ParseSemantic(v)
	if err != nil || parsed.Major() != 1 {
		return 0, false
	}
	return int(parsed.Minor()), true
}

// Tested tells whether v is inside the tested window.
func Tested(v string) bool {
	m, ok := Minor(v)
	return ok && m >= OldestTestedMinor && m <= NewestMinor
}

// Check is the policy for a move from the installed version (from; empty on creation) to the
// target: the target must be a 1.x semantic version no newer than v1.NewestMinor; coming from
// a version, the minor may not go down nor skip one. Patch numbers are free in both directions
// (v1.35.4 to v1.35.0 is allowed, as in Kamaji: the way back from a bad patch release).
func Check(from, to string) error {
	target, err := version.ParseSemantic(to)
	if err != nil {
		return fmt.Errorf("must be a semantic version such as v1.%d.2", NewestMinor)
	}
	if target.Major() < 1 {
		return fmt.Errorf("must be a Kubernetes 1.x version")
	}
	if target.Major() > 1 || target.Minor() > NewestMinor {
		return fmt.Errorf("versions newer than v1.%d are not supported yet (tested: %s)", NewestMinor, Window())
	}
	if from == "" {
		return nil
	}
	current, err := version.ParseSemantic(from)
	if err != nil || current.Major() != 1 {
		return nil // the installed version predates this policy: accept any allowed target
	}
	if target.Minor() < current.Minor() {
		return fmt.Errorf("downgrading from %s to v1.%d is not supported (only the patch number may go down)", from, target.Minor())
	}
	if target.Minor() > current.Minor()+1 {
		return fmt.Errorf("upgrading from %s must go one minor version at a time (next: v1.%d)", from, current.Minor()+1)
	}
	return nil
}

// Warning is what admission says about an allowed version outside the tested window, or "".
func Warning(v string) string {
	m, ok := Minor(v)
	if !ok || Tested(v) {
		return ""
	}
	return fmt.Sprintf("spec.kubernetes.version %s is older than the versions this release is tested with (%s): "+
		"it is accepted, and runs with the flags and manifests of v1.%d", v, Window(), max(m, OldestTestedMinor))
}
