package controlplane

import (
	"strings"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// Defaults of spec.controlPlane.deployment.registrySettings, repeated here because the CRD
// default only applies when the whole block is absent.
const (
	defaultRegistry               = "registry.k8s.io"
	defaultAPIServerImage         = "kube-apiserver"
	defaultControllerManagerImage = "kube-controller-manager"
	defaultSchedulerImage         = "kube-scheduler"
)

type images struct {
	apiServer, controllerManager, scheduler string
}

// componentImages are <registry>/<image>:<version><tagSuffix>, the tag following
// spec.kubernetes.version so that an upgrade is an image change.
func componentImages(rs kamajiv1alpha1.RegistrySettings, version string) images {
	registry := strings.TrimSuffix(or(rs.Registry, defaultRegistry), "/")
	ref := func(image, def string) string {
		return registry + "/" + or(image, def) + ":" + version + rs.TagSuffix
	}
	return images{
		apiServer:         ref(rs.APIServerImage, defaultAPIServerImage),
		controllerManager: ref(rs.ControllerManagerImage, defaultControllerManagerImage),
		scheduler:         ref(rs.SchedulerImage, defaultSchedulerImage),
	}
}

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
