package node

import (
	"net"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A pod being deleted is reported not ready at once, so that the EndpointSlice controller
// takes it out of its Services (as not serving, even as their only endpoint) before the node
// signals its containers.
func TestDeletingPodIsNotReady(t *testing.T) {
	n := &Node{cfg: Config{Gateway: net.ParseIP("10.244.0.1")}}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "u"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}},
	}
	r := n.newRunner(pod)
	r.sb = &sandbox{IP: net.ParseIP("10.244.0.9")}
	r.initDone = true
	c := r.ctrs[0]
	c.state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	c.started, c.ready = true, true

	ready := func(st corev1.PodStatus) bool {
		for _, cond := range st.Conditions {
			if cond.Type == corev1.PodReady {
				return cond.Status == corev1.ConditionTrue && st.ContainerStatuses[0].Ready
			}
		}
		return false
	}
	if st := r.buildStatus(pod); !ready(st) {
		t.Fatalf("running pod not ready: %+v", st.Conditions)
	}
	r.markDeleting()
	if st := r.buildStatus(pod); ready(st) {
		t.Fatalf("pod being deleted still ready: %+v", st.Conditions)
	}
}
