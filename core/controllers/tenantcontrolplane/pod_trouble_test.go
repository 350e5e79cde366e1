package tenantcontrolplane_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	tcpcontroller "github.com/openhcp/kamaji/core/controllers/tenantcontrolplane"
	"github.com/openhcp/kamaji/sdk/testkit"
)

func waiting(name, reason, message string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}}
}

func TestPodTroubleSaysWhyAPodDoesNotRun(t *testing.T) {
	pod := func(name string, conds []corev1.PodCondition, statuses ...corev1.ContainerStatus) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{Conditions: conds, ContainerStatuses: statuses}}
	}
	crash := waiting("kube-apiserver", "CrashLoopBackOff", "back-off 20s restarting failed container")
	// The end of the log, as the kubelet gives it with FallbackToLogsOnError: the usage, then the error.
	crash.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error",
		Message: "Usage:\n  kube-apiserver [flags]\n      --v Level   number for the log level verbosity\n\nError: unknown flag: --no-such-flag\n"}
	gone := pod("a-leaving", nil, waiting("kube-apiserver", "ErrImagePull", "gone"))
	gone.DeletionTimestamp = &metav1.Time{}
	for _, tc := range []struct {
		name string
		pods []corev1.Pod
		want string
	}{
		{"starting", []corev1.Pod{pod("p", nil, waiting("kube-apiserver", "ContainerCreating", ""))}, ""},
		{"running", []corev1.Pod{pod("p", nil, corev1.ContainerStatus{Name: "kube-apiserver", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})}, ""},
		{"an image that cannot be pulled", []corev1.Pod{pod("p", nil, waiting("kube-scheduler", "ImagePullBackOff", `Back-off pulling image "registry.k8s.io/kube-scheduler:1.37.2"`))},
			`pod p, container kube-scheduler: ImagePullBackOff: Back-off pulling image "registry.k8s.io/kube-scheduler:1.37.2"`},
		{"a crash loop, with its last exit", []corev1.Pod{pod("p", nil, crash)},
			"pod p, container kube-apiserver: CrashLoopBackOff (last exit code 1: Error: unknown flag: --no-such-flag)"},
		{"no node", []corev1.Pod{pod("p", []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/3 nodes are available: 3 Insufficient cpu."}})},
			"pod p cannot be scheduled: 0/3 nodes are available: 3 Insufficient cpu."},
		{"a deleted pod does not count, pods by name", []corev1.Pod{pod("c", nil, crash), gone, pod("b", nil, waiting("kube-scheduler", "CreateContainerConfigError", `secret "x" not found`))},
			`pod b, container kube-scheduler: CreateContainerConfigError: secret "x" not found`},
		{"a credential in a message is scrubbed", []corev1.Pod{pod("p", nil, waiting("kine", "ErrImagePull", "pull https://user:s3cret@mirror.example.com/kine failed"))}, "s3cret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tcpcontroller.PodTrouble(tc.pods)
			if tc.want == "s3cret" {
				if strings.Contains(got, "s3cret") || !strings.Contains(got, "ErrImagePull") {
					t.Fatalf("got %q: want ErrImagePull without the password", got)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// A TCP whose pod cannot pull its image or crash-loops says so in its Ready condition (and so
// in kubectl kamaji list), not only that it waits for its pods.
func TestPodTroubleReachesTheStatus(t *testing.T) {
	const name = "pod-trouble"
	ctx := ctxT(t)
	etcd := testkit.StartEtcd(t)
	if err := env.Client.Create(ctx, dataStoreFor(name, etcd)); err != nil {
		t.Fatal(err)
	}
	createTCP(t, name, name, nil)
	// The pod the Deployment would have made (no controller runs here), with our labels.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name + "-7d9f8", Labels: map[string]string{
			kamajiv1alpha1.NameLabel: name, kamajiv1alpha1.ManagedByLabel: kamajiv1alpha1.ManagedByValue,
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kube-apiserver", Image: "registry.k8s.io/kube-apiserver:v1.36.1"}}},
	}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), pod) })
	setStatus := func(cs corev1.ContainerStatus) {
		t.Helper()
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
		if err := env.Client.Status().Update(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}
	readyMessage := func(want string) {
		t.Helper()
		eventually(t, "the Ready condition to say "+want, func(ctx context.Context) (bool, error) {
			c := meta.FindStatusCondition(getTCP(ctx, t, name).Status.Conditions, kamajiv1alpha1.ConditionReady)
			if c == nil {
				return false, fmt.Errorf("no Ready condition")
			}
			return c.Message == want, fmt.Errorf("Ready: %s: %s", c.Reason, c.Message)
		})
	}
	setStatus(waiting("kube-apiserver", "ImagePullBackOff", `Back-off pulling image "registry.k8s.io/kube-apiserver:v1.36.1"`))
	readyMessage(`waiting for the control plane pods: pod pod-trouble-7d9f8, container kube-apiserver: ImagePullBackOff: Back-off pulling image "registry.k8s.io/kube-apiserver:v1.36.1"`)

	crash := waiting("kube-apiserver", "CrashLoopBackOff", "back-off 10s restarting failed container")
	crash.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}
	setStatus(crash)
	readyMessage("waiting for the control plane pods: pod pod-trouble-7d9f8, container kube-apiserver: CrashLoopBackOff (last exit code 1, Error)")

	setStatus(corev1.ContainerStatus{Name: "kube-apiserver", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})
	readyMessage("waiting for the control plane pods")
}
