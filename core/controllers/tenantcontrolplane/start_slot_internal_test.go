package tenantcontrolplane

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// Only a control plane with no replica asks the start queue; one with an available replica
// (running, rolling out) never waits, and one scaled up with none available yet is under way.
func TestStartPhaseOf(t *testing.T) {
	dep := func(replicas, available int32) *appsv1.Deployment {
		return &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas)}, Status: appsv1.DeploymentStatus{AvailableReplicas: available}}
	}
	for _, c := range []struct {
		name   string
		cur    *appsv1.Deployment
		wanted int32
		want   startPhase
	}{
		{"no Deployment yet", nil, 2, startNeeded},
		{"scaled to zero, woken", dep(0, 0), 1, startNeeded},
		{"scaled up, nothing available", dep(2, 0), 2, startUnderway},
		{"running", dep(2, 2), 2, startNone},
		{"one of two available (a rollout, a crash)", dep(2, 1), 2, startNone},
		{"pods still leaving after a scale to zero, wanted again", dep(0, 1), 1, startNone},
		{"asleep", dep(0, 0), 0, startNone},
		{"no Deployment, none wanted", nil, 0, startNone},
	} {
		if got := startPhaseOf(c.cur, c.wanted); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// A TCP waiting its turn says so in Ready and ControlPlaneAvailable, as Provisioning.
func TestStatusWhileWaitingToStart(t *testing.T) {
	tcp := &kamajiv1alpha1.TenantControlPlane{}
	tcp.Spec.Kubernetes.Version = "v1.37.2"
	tcp.Spec.ControlPlane.Deployment.Replicas = ptr.To[int32](1)
	const why = "waiting its turn to start: at most 2 control planes start at once (manager setting max-starting-control-planes)"
	p := &pass{tcp: tcp, now: time.Now(), startWaiting: why, deploymentObserved: true, deploymentApplied: true}
	p.status.Kubernetes.Deployment.Name = "tcp"
	computeStatus(p)
	if s := p.status.Kubernetes.Version.Status; s == nil || *s != kamajiv1alpha1.VersionProvisioning {
		t.Errorf("version status %v, want Provisioning", s)
	}
	for _, ct := range []string{kamajiv1alpha1.ConditionReady, kamajiv1alpha1.ConditionControlPlaneAvailable} {
		c := meta.FindStatusCondition(p.status.Conditions, ct)
		if c == nil || c.Status != metav1.ConditionFalse || c.Message != why {
			t.Errorf("%s: %+v, want False saying %q", ct, c, why)
		}
	}
}
