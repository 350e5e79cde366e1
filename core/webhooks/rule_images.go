package webhooks

import (
	"context"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// The grammar of an image reference (the OCI distribution reference): a repository is an
// optional registry host (a DNS name or [IPv6], with a port) and lower-case path components;
// a tag is up to 128 word characters, dots and dashes, not starting with either.
var (
	imageTag      = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	imagePathPart = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
	imageDomain   = `(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?`
	imageRepo     = regexp.MustCompile(`^(?:` + imageDomain + `/)?` + imagePathPart + `(?:/` + imagePathPart + `)*$`)
	imagePathOnly = regexp.MustCompile(`^` + imagePathPart + `(?:/` + imagePathPart + `)*$`)
)

const (
	maxImageRepo    = 255
	tagExplanation  = "must be a valid image tag: up to 128 letters, digits, underscores, dots and dashes, not starting with a dot or a dash"
	repoExplanation = "must be a valid image repository, such as registry.example.com/team/image (lower-case path, optional registry host and port)"
)

// ruleImages: the fields that become image references must be valid in one. Otherwise the
// reference is refused only where the image is pulled: by the control plane's pods, which never
// start, or in the tenant, where an addon's pods stay InvalidImageName while the TCP reports the
// addon applied. Only values the request sets or changes are checked, so a TCP stored with a
// bad one is not locked (this rule is not Kamaji's).
func ruleImages(_ context.Context, rc *tcpRuleContext) field.ErrorList {
	var errs field.ErrorList
	spec := &rc.New.Spec
	var old *kamajiv1alpha1.TenantControlPlaneSpec
	if rc.Old != nil {
		old = &rc.Old.Spec
	}
	changed := func(get func(*kamajiv1alpha1.TenantControlPlaneSpec) string) (string, bool) {
		v := get(spec)
		return v, v != "" && (old == nil || get(old) != v)
	}
	check := func(path *field.Path, get func(*kamajiv1alpha1.TenantControlPlaneSpec) string, valid func(string) bool, why string) {
		if v, ok := changed(get); ok && !valid(v) {
			errs = append(errs, field.Invalid(path, v, why))
		}
	}
	isTag := imageTag.MatchString
	isRepo := func(v string) bool { return len(v) <= maxImageRepo && imageRepo.MatchString(v) }
	// A registry (or repository prefix) is followed by an image name: it may be a host alone.
	isPrefix := func(v string) bool { return isRepo(strings.TrimSuffix(v, "/") + "/image") }

	rs := field.NewPath("spec", "controlPlane", "deployment", "registrySettings")
	check(rs.Child("registry"), func(s *kamajiv1alpha1.TenantControlPlaneSpec) string {
		return s.ControlPlane.Deployment.RegistrySettings.Registry
	}, isPrefix, repoExplanation)
	for _, img := range []struct {
		name string
		get  func(*kamajiv1alpha1.RegistrySettings) string
	}{
		{"apiServerImage", func(r *kamajiv1alpha1.RegistrySettings) string { return r.APIServerImage }},
		{"controllerManagerImage", func(r *kamajiv1alpha1.RegistrySettings) string { return r.ControllerManagerImage }},
		{"schedulerImage", func(r *kamajiv1alpha1.RegistrySettings) string { return r.SchedulerImage }},
	} {
		check(rs.Child(img.name), func(s *kamajiv1alpha1.TenantControlPlaneSpec) string {
			return img.get(&s.ControlPlane.Deployment.RegistrySettings)
		},
			imagePathOnly.MatchString, "must be an image name under the registry: lower-case path components, such as kube-apiserver")
	}
	// The control plane's tag is the version followed by tagSuffix (a version with build
	// metadata, v1.37.2+x, is a semantic version but no tag).
	check(field.NewPath("spec", "kubernetes", "version"), func(s *kamajiv1alpha1.TenantControlPlaneSpec) string {
		if s.Kubernetes.Version == "" {
			return ""
		}
		return s.Kubernetes.Version + s.ControlPlane.Deployment.RegistrySettings.TagSuffix
	}, isTag, "with registrySettings.tagSuffix, the control plane's image tag, which "+tagExplanation)

	addons := field.NewPath("spec", "addons")
	for _, a := range []struct {
		name string
		get  func(*kamajiv1alpha1.TenantControlPlaneSpec) *kamajiv1alpha1.AddonSpec
	}{
		{"coreDNS", func(s *kamajiv1alpha1.TenantControlPlaneSpec) *kamajiv1alpha1.AddonSpec { return s.Addons.CoreDNS }},
		{"kubeProxy", func(s *kamajiv1alpha1.TenantControlPlaneSpec) *kamajiv1alpha1.AddonSpec { return s.Addons.KubeProxy }},
	} {
		of := func(pick func(*kamajiv1alpha1.AddonSpec) string) func(*kamajiv1alpha1.TenantControlPlaneSpec) string {
			return func(s *kamajiv1alpha1.TenantControlPlaneSpec) string {
				if as := a.get(s); as != nil {
					return pick(as)
				}
				return ""
			}
		}
		check(addons.Child(a.name, "imageRepository"), of(func(as *kamajiv1alpha1.AddonSpec) string { return as.ImageRepository }), isPrefix, repoExplanation)
		check(addons.Child(a.name, "imageTag"), of(func(as *kamajiv1alpha1.AddonSpec) string { return as.ImageTag }), isTag, tagExplanation)
	}
	konn := func(pick func(*kamajiv1alpha1.KonnectivitySpec) string) func(*kamajiv1alpha1.TenantControlPlaneSpec) string {
		return func(s *kamajiv1alpha1.TenantControlPlaneSpec) string {
			if s.Addons.Konnectivity != nil {
				return pick(s.Addons.Konnectivity)
			}
			return ""
		}
	}
	k := addons.Child("konnectivity")
	check(k.Child("server", "image"), konn(func(ks *kamajiv1alpha1.KonnectivitySpec) string { return ks.KonnectivityServerSpec.Image }), isRepo, repoExplanation)
	check(k.Child("server", "version"), konn(func(ks *kamajiv1alpha1.KonnectivitySpec) string { return ks.KonnectivityServerSpec.Version }), isTag, tagExplanation)
	check(k.Child("agent", "image"), konn(func(ks *kamajiv1alpha1.KonnectivitySpec) string { return ks.KonnectivityAgentSpec.Image }), isRepo, repoExplanation)
	check(k.Child("agent", "version"), konn(func(ks *kamajiv1alpha1.KonnectivitySpec) string { return ks.KonnectivityAgentSpec.Version }), isTag, tagExplanation)
	return errs
}
