package webhooks

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/version"
)

// The tenant Kubernetes versions this release can run: the three minors kubeadm supports.
var (
	MinSupportedVersion = version.MustParseSemantic("v1.35.0")
	MaxSupportedMinor   = version.MustParseSemantic("v1.37.0")
)

// ruleVersion applies the version policy to spec.kubernetes.version.
func ruleVersion(_ context.Context, rc *tcpRuleContext) field.ErrorList {
	path := field.NewPath("spec", "kubernetes", "version")
	from := ""
	if rc.Old != nil {
		// An upgrade in flight counts from what is installed, not from the half-applied spec.
		from = rc.Old.Status.Kubernetes.Version.Version
		if from == "" {
			from = rc.Old.Spec.Kubernetes.Version
		}
	}
	if err := CheckVersion(from, rc.New.Spec.Kubernetes.Version); err != nil {
		return field.ErrorList{field.Invalid(path, rc.New.Spec.Kubernetes.Version, err.Error())}
	}
	return nil
}

// CheckVersion is the version policy: the target must parse, sit inside the supported window,
// and, coming from an installed version, neither go down nor skip a minor.
func CheckVersion(from, to string) error {
	target, err := version.ParseSemantic(to)
	if err != nil {
		return fmt.Errorf("must be a semantic version such as v1.37.2")
	}
	if target.LessThan(MinSupportedVersion) {
		return fmt.Errorf("versions older than v%d.%d are not supported (supported: v%d.%d to v%d.%d)",
			MinSupportedVersion.Major(), MinSupportedVersion.Minor(), MinSupportedVersion.Major(), MinSupportedVersion.Minor(), MaxSupportedMinor.Major(), MaxSupportedMinor.Minor())
	}
	if target.Major() > MaxSupportedMinor.Major() || target.Minor() > MaxSupportedMinor.Minor() {
		return fmt.Errorf("versions newer than v%d.%d are not supported yet (supported: v%d.%d to v%d.%d)",
			MaxSupportedMinor.Major(), MaxSupportedMinor.Minor(), MinSupportedVersion.Major(), MinSupportedVersion.Minor(), MaxSupportedMinor.Major(), MaxSupportedMinor.Minor())
	}
	if from == "" {
		return nil
	}
	current, err := version.ParseSemantic(from)
	if err != nil {
		return nil // the installed version predates this policy: accept any supported target
	}
	if target.LessThan(current) {
		return fmt.Errorf("downgrading from %s is not supported", from)
	}
	if target.Minor() > current.Minor()+1 {
		return fmt.Errorf("upgrading from %s must go one minor version at a time (next: v%d.%d)", from, current.Major(), current.Minor()+1)
	}
	return nil
}
