package webhooks

import (
	"context"
	"strings"
	"testing"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

func TestRuleImages(t *testing.T) {
	base := func(mod func(s *kamajiv1alpha1.TenantControlPlaneSpec)) *kamajiv1alpha1.TenantControlPlane {
		o := &kamajiv1alpha1.TenantControlPlane{}
		o.Spec.Kubernetes.Version = "v1.37.2"
		o.Spec.ControlPlane.Deployment.RegistrySettings = kamajiv1alpha1.RegistrySettings{
			Registry: "registry.k8s.io", APIServerImage: "kube-apiserver", ControllerManagerImage: "kube-controller-manager", SchedulerImage: "kube-scheduler",
		}
		o.Spec.Addons.Konnectivity = &kamajiv1alpha1.KonnectivitySpec{
			KonnectivityServerSpec: kamajiv1alpha1.KonnectivityServerSpec{Image: "registry.k8s.io/kas-network-proxy/proxy-server", Version: "v0.34.0"},
			KonnectivityAgentSpec:  kamajiv1alpha1.KonnectivityAgentSpec{Image: "registry.k8s.io/kas-network-proxy/proxy-agent", Version: "v0.34.0"},
		}
		if mod != nil {
			mod(&o.Spec)
		}
		return o
	}
	for _, tc := range []struct {
		name      string
		old, new  *kamajiv1alpha1.TenantControlPlane
		wantField string
	}{
		{name: "the defaults", new: base(nil)},
		{name: "a mirror with a port, a path and a suffix", new: base(func(s *kamajiv1alpha1.TenantControlPlaneSpec) {
			s.ControlPlane.Deployment.RegistrySettings.Registry = "Mirror.Example.com:5000/k8s/"
			s.ControlPlane.Deployment.RegistrySettings.TagSuffix = "-fips.1"
			s.Addons.CoreDNS = &kamajiv1alpha1.AddonSpec{ImageRepository: "[fd00::1]:5000", ImageTag: "v1.14.6"}
			s.Addons.KubeProxy = &kamajiv1alpha1.AddonSpec{ImageRepository: "mirror.example.com/k8s", ImageTag: "v1.37.2_custom"}
		})},
		{name: "an addon tag with a space", new: base(func(s *kamajiv1alpha1.TenantControlPlaneSpec) {
			s.Addons.KubeProxy = &kamajiv1alpha1.AddonSpec{ImageTag: "bad tag!"}
		}), wantField: "spec.addons.kubeProxy.imageTag"},
		{name: "an addon repository with upper case in its path", new: base(func(s *kamajiv1alpha1.TenantControlPlaneSpec) {
			s.Addons.CoreDNS = &kamajiv1alpha1.AddonSpec{ImageRepository: "mirror.example.com/Team"}
		}), wantField: "spec.addons.coreDNS.imageRepository"},
		{name: "a registry with a scheme", new: base(func(s *kamajiv1alpha1.TenantControlPlaneSpec) {
			s.ControlPlane.Deployment.RegistrySettings.Registry = "https://mirror.example.com"
		}), wantField: "spec.controlPlane.deployment.registrySettings.registry"},
		{name: "an image name with a tag in it", new: base(func(s *kamajiv1alpha1.TenantControlPlaneSpec) {
			s.ControlPlane.Deployment.RegistrySettings.SchedulerImage = "kube-scheduler:v1"
		}), wantField: "spec.controlPlane.deployment.registrySettings.schedulerImage"},
		{name: "a tag suffix no tag may hold", new: base(func(s *kamajiv1alpha1.TenantControlPlaneSpec) {
			s.ControlPlane.Deployment.RegistrySettings.TagSuffix = "+fips"
		}), wantField: "spec.kubernetes.version"},
		{name: "a version with build metadata", new: base(func(s *kamajiv1alpha1.TenantControlPlaneSpec) {
			s.Kubernetes.Version = "v1.37.2+abc"
		}), wantField: "spec.kubernetes.version"},
		{name: "a konnectivity version with a slash", new: base(func(s *kamajiv1alpha1.TenantControlPlaneSpec) {
			s.Addons.Konnectivity.KonnectivityAgentSpec.Version = "v0.34/0"
		}), wantField: "spec.addons.konnectivity.agent.version"},
		{name: "a konnectivity image with a tag", new: base(func(s *kamajiv1alpha1.TenantControlPlaneSpec) {
			s.Addons.Konnectivity.KonnectivityServerSpec.Image = "registry.k8s.io/kas-network-proxy/proxy-server:v0.34.0"
		}), wantField: "spec.addons.konnectivity.server.image"},
		{name: "a bad value stored before is left alone", old: base(func(s *kamajiv1alpha1.TenantControlPlaneSpec) {
			s.Addons.KubeProxy = &kamajiv1alpha1.AddonSpec{ImageTag: "bad tag!"}
		}), new: base(func(s *kamajiv1alpha1.TenantControlPlaneSpec) {
			s.Addons.KubeProxy = &kamajiv1alpha1.AddonSpec{ImageTag: "bad tag!"}
			s.Kubernetes.Version = "v1.37.3"
		})},
		{name: "changing it to another bad value is not", old: base(func(s *kamajiv1alpha1.TenantControlPlaneSpec) {
			s.Addons.KubeProxy = &kamajiv1alpha1.AddonSpec{ImageTag: "bad tag!"}
		}), new: base(func(s *kamajiv1alpha1.TenantControlPlaneSpec) {
			s.Addons.KubeProxy = &kamajiv1alpha1.AddonSpec{ImageTag: "bad tag?"}
		}), wantField: "spec.addons.kubeProxy.imageTag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := ruleImages(context.Background(), &tcpRuleContext{Old: tc.old, New: tc.new})
			switch {
			case tc.wantField == "" && len(errs) > 0:
				t.Fatalf("unexpected: %v", errs)
			case tc.wantField != "" && (len(errs) != 1 || errs[0].Field != tc.wantField || !strings.Contains(errs[0].Error(), "must be")):
				t.Fatalf("got %v, want one error on %s", errs, tc.wantField)
			}
		})
	}
}
