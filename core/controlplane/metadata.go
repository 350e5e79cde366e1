package controlplane

import (
	"maps"
)

// deploymentLabels are the user's additional labels with the selector labels on top: a user
// label must not be able to detach the Deployment from the core's caches and lookups.
func deploymentLabels(in Input) map[string]string {
	return merge(in.TCP.Spec.ControlPlane.Deployment.AdditionalMetadata.Labels, in.Labels)
}

func deploymentAnnotations(in Input) map[string]string {
	return merge(in.TCP.Spec.ControlPlane.Deployment.AdditionalMetadata.Annotations, nil)
}

// podLabels must contain the selector labels, or the Deployment would not own its pods.
func podLabels(in Input) map[string]string {
	return merge(in.TCP.Spec.ControlPlane.Deployment.PodAdditionalMetadata.Labels, in.Labels)
}

func podAnnotations(in Input) map[string]string {
	var ours map[string]string
	if in.SecretsChecksum != "" {
		ours = map[string]string{SecretsChecksumAnnotation: in.SecretsChecksum}
	}
	return merge(in.TCP.Spec.ControlPlane.Deployment.PodAdditionalMetadata.Annotations, ours)
}

// merge copies theirs then ours, so ours win; nil when empty, so an absent map stays absent.
func merge(theirs, ours map[string]string) map[string]string {
	if len(theirs)+len(ours) == 0 {
		return nil
	}
	out := make(map[string]string, len(theirs)+len(ours))
	maps.Copy(out, theirs)
	maps.Copy(out, ours)
	return out
}
