package controlplane

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// defaultReplicas is the CRD default of spec.controlPlane.deployment.replicas.
const defaultReplicas int32 = 2

// Build returns the Deployment running the tenant's control plane, named after the
// TenantControlPlane in its namespace. It is pure and deterministic: the same Input gives a
// byte-identical object, and the Input is never modified nor aliased. TypeMeta is set for
// server-side apply; owner references are left to the caller.
func Build(in Input) (*appsv1.Deployment, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	dep := &in.TCP.Spec.ControlPlane.Deployment

	ps := podSpec(in)
	if err := checkPod(&ps); err != nil {
		return nil, err
	}

	replicas := defaultReplicas
	if dep.Replicas != nil {
		replicas = *dep.Replicas // 0 is meaningful: a sleeping tenant
	}
	if in.Replicas != nil {
		replicas = *in.Replicas
	}

	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        in.TCP.Name,
			Namespace:   in.TCP.Namespace,
			Labels:      deploymentLabels(in),
			Annotations: deploymentAnnotations(in),
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: merge(in.Labels, nil)},
			Strategy: strategy(dep.Strategy),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      podLabels(in),
					Annotations: podAnnotations(in),
				},
				Spec: ps,
			},
		},
	}, nil
}

// strategy defaults to blue/green (surge a full new set, remove no old pod before): the tenant
// keeps a working API server through every rollout, even one whose new pods never get ready.
func strategy(s appsv1.DeploymentStrategy) appsv1.DeploymentStrategy {
	if s.Type == "" && s.RollingUpdate == nil {
		return appsv1.DeploymentStrategy{
			Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: ptr.To(intstr.FromInt32(0)),
				MaxSurge:       ptr.To(intstr.FromString("100%")),
			},
		}
	}
	return *s.DeepCopy()
}
