package manager

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestSlimDeployment(t *testing.T) {
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name: "tenant-a", Annotations: map[string]string{"kamaji.clastix.io/storage": `{"secret":"s"}`},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kamaji"}},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"kamaji.clastix.io/name": "tenant-a"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"checksum": "c"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "kube-apiserver", Args: []string{"--v=2"}}}},
			},
		},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 3, ReadyReplicas: 2},
	}
	out, err := slimDeployment(dep)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*appsv1.Deployment)
	if len(got.Spec.Template.Spec.Containers) != 0 || got.ManagedFields != nil {
		t.Errorf("pod spec or managedFields kept: %+v, %+v", got.Spec.Template.Spec, got.ManagedFields)
	}
	if got.Annotations["kamaji.clastix.io/storage"] == "" || *got.Spec.Replicas != 2 || got.Spec.Selector == nil ||
		got.Spec.Template.Annotations["checksum"] != "c" || got.Status.ReadyReplicas != 2 || got.Status.ObservedGeneration != 3 {
		t.Errorf("something the core reads was dropped: %+v", got)
	}

	// Anything else (a tombstone of a deleted object, say) passes with its managedFields dropped.
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "x", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kamaji"}}}}
	if out, err := slimDeployment(svc); err != nil || out.(*corev1.Service).ManagedFields != nil {
		t.Errorf("slimDeployment(Service) = %+v, %v", out, err)
	}
}

func TestSlimPod(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "tenant-a-1", Labels: map[string]string{"kamaji.clastix.io/name": "tenant-a"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kube-apiserver", Args: []string{"--v=2"}}}},
		Status: corev1.PodStatus{
			Phase: corev1.PodPending,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "no node"},
				{Type: corev1.PodReady, Status: corev1.ConditionFalse},
			},
			PodIP: "10.0.0.1",
			ContainerStatuses: []corev1.ContainerStatus{{
				Name: "kube-apiserver", Image: "registry.k8s.io/kube-apiserver:v1.37.2", ImageID: "sha256:x", RestartCount: 2,
				State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}},
			}},
		},
	}
	out, err := slimPod(pod)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Pod)
	if len(got.Spec.Containers) != 0 || got.ManagedFields != nil || got.Status.PodIP != "" || len(got.Status.Conditions) != 1 ||
		got.Status.ContainerStatuses[0].Image != "" {
		t.Errorf("more than the trouble was kept: %+v", got)
	}
	cs := got.Status.ContainerStatuses[0]
	if got.Labels["kamaji.clastix.io/name"] != "tenant-a" || got.Status.Conditions[0].Reason != corev1.PodReasonUnschedulable ||
		cs.State.Waiting.Reason != "CrashLoopBackOff" || cs.LastTerminationState.Terminated.ExitCode != 1 || cs.RestartCount != 2 {
		t.Errorf("something PodTrouble reads was dropped: %+v", got)
	}
}
