package webhooks

import (
	"context"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/version"

	"github.com/openhcp/kamaji/core/kubeversion"
)

// The tenant Kubernetes versions of this release (see core/kubeversion): the window it is
// tested with. Older versions are accepted with a warning, as Kamaji sets no lower bound;
// minors newer than MaxSupportedMinor are refused.
var (
	MinTestedVersion  = version.MajorMinor(1, kubeversion.OldestTestedMinor)
	MaxSupportedMinor = version.MajorMinor(1, kubeversion.NewestMinor)
)

// ruleVersion applies the version policy to spec.kubernetes.version, and warns about a version
// outside the tested window.
func ruleVersion(_ context.Context, rc *tcpRuleContext) field.ErrorList {
	path := field.NewPath("spec", "kubernetes", "version")
	if rc.New.Spec.Kubernetes.Version == "" {
		// The schema accepts "" (as Kamaji's): the verdict is ours.
		return field.ErrorList{field.Required(path, "the tenant's Kubernetes version, such as v1.37.2, is required")}
	}
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
	if w := kubeversion.Warning(rc.New.Spec.Kubernetes.Version); w != "" {
		rc.Warnings = append(rc.Warnings, w)
	}
	return nil
}

// CheckVersion is the version policy (kubeversion.Check): the target must parse and be no newer
// than the newest known minor; coming from an installed version, the minor neither goes down
// nor skips one, and the patch number is free.
func CheckVersion(from, to string) error { return kubeversion.Check(from, to) }
