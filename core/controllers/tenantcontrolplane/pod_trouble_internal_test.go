package tenantcontrolplane

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

// The pod watch enqueues a TCP when a pod gets into, out of, or into another kind of trouble;
// not while it starts normally, nor at each retry of the kubelet.
func TestPodTroubleChanged(t *testing.T) {
	pod := func(reason, message string, restarts int32) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
		cs := corev1.ContainerStatus{Name: "kube-apiserver", RestartCount: restarts}
		if reason == "" {
			cs.State.Running = &corev1.ContainerStateRunning{}
		} else {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: message}
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
		return p
	}
	update := func(old, new *corev1.Pod) bool {
		return podTroubleChanged.Update(event.UpdateEvent{ObjectOld: old, ObjectNew: new})
	}
	for _, tc := range []struct {
		name string
		got  bool
		want bool
	}{
		{"created starting", podTroubleChanged.Create(event.CreateEvent{Object: pod("ContainerCreating", "", 0)}), false},
		{"created in trouble (a manager restart)", podTroubleChanged.Create(event.CreateEvent{Object: pod("ErrImagePull", "x", 0)}), true},
		{"starting to running", update(pod("ContainerCreating", "", 0), pod("", "", 0)), false},
		{"starting to an image pull error", update(pod("ContainerCreating", "", 0), pod("ErrImagePull", "x", 0)), true},
		{"the kubelet backing off its pulls", update(pod("ErrImagePull", "x", 0), pod("ImagePullBackOff", "back-off", 0)), false},
		{"a crash loop restarting again", update(pod("CrashLoopBackOff", "back-off 10s", 3), pod("CrashLoopBackOff", "back-off 20s", 4)), false},
		{"from a pull error to a crash loop", update(pod("ImagePullBackOff", "x", 0), pod("CrashLoopBackOff", "back-off 10s", 1)), true},
		{"out of trouble", update(pod("CrashLoopBackOff", "back-off 10s", 3), pod("", "", 3)), true},
		{"deleted", podTroubleChanged.Delete(event.DeleteEvent{Object: pod("ErrImagePull", "x", 0)}), false},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: enqueued %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}
