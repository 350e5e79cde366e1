package tenantcontrolplane

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/conditionevents"
)

// maxTrouble bounds what a pod's trouble adds to a condition message.
const maxTrouble = 512

// PodTrouble says why a control-plane pod does not run, from its status: the first pod (by
// name, deleted ones skipped) that cannot be scheduled, or whose container waits for a reason
// other than being created (an image that cannot be pulled, a crash loop with its last exit,
// a configuration the kubelet refuses). Empty when none does: the pods are starting or run.
// Without it a TCP whose pods never start says only that it waits for them.
func PodTrouble(pods []corev1.Pod) string {
	sorted := make([]*corev1.Pod, 0, len(pods))
	for i := range pods {
		if pods[i].DeletionTimestamp == nil {
			sorted = append(sorted, &pods[i])
		}
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, pod := range sorted {
		if t := podTrouble(pod, true); t != "" {
			return conditionevents.Truncate(conditionevents.Scrub(t), maxTrouble)
		}
	}
	return ""
}

// podTrouble is one pod's trouble; without detail, only its kind (pod, container and reason),
// which changes when the trouble does, not at each retry.
func podTrouble(pod *corev1.Pod, detail bool) string {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			if !detail {
				return pod.Name + "/Unschedulable"
			}
			return fmt.Sprintf("pod %s cannot be scheduled: %s", pod.Name, c.Message)
		}
	}
	statuses := append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, cs := range statuses {
		w := cs.State.Waiting
		if w == nil || w.Reason == "" || w.Reason == "ContainerCreating" || w.Reason == "PodInitializing" {
			continue
		}
		reason := w.Reason
		if !detail {
			// The kubelet alternates the two while it backs off.
			if reason == "ImagePullBackOff" {
				reason = "ErrImagePull"
			}
			return pod.Name + "/" + cs.Name + "/" + reason
		}
		t := fmt.Sprintf("pod %s, container %s: %s", pod.Name, cs.Name, reason)
		if last := cs.LastTerminationState.Terminated; last != nil {
			// A crash loop's own message only counts the back-off; the last exit says more.
			// Its log's last line when the runtime kept it, else the runtime's reason.
			t += fmt.Sprintf(" (last exit code %d", last.ExitCode)
			if line := lastLine(last.Message); line != "" {
				t += ": " + line
			} else if last.Reason != "" {
				t += ", " + last.Reason
			}
			t += ")"
		} else if w.Message != "" {
			t += ": " + w.Message
		}
		return t
	}
	return ""
}

// podTroubleChanged lets through a control-plane pod that gets into or out of trouble, or
// into another kind of it: the TCP's status then says so. A pod that starts normally enqueues
// nothing (its Deployment's status does), nor does a crash loop at each restart.
var podTroubleChanged = predicate.Funcs{
	CreateFunc:  func(e event.CreateEvent) bool { return troubleKind(e.Object) != "" },
	UpdateFunc:  func(e event.UpdateEvent) bool { return troubleKind(e.ObjectOld) != troubleKind(e.ObjectNew) },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

func troubleKind(o client.Object) string {
	if pod, ok := o.(*corev1.Pod); ok {
		return podTrouble(pod, false)
	}
	return ""
}

// readPodTrouble fills p.podTrouble while the rollout is incomplete, from the cached pods of
// the TCP (the cache keeps their status only).
func (r *Reconciler) readPodTrouble(ctx context.Context, p *pass) {
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(p.tcp.Namespace), client.MatchingLabels{kamajiv1alpha1.NameLabel: p.tcp.Name}); err != nil {
		return // only a better message is lost
	}
	p.podTrouble = PodTrouble(pods.Items)
}

// lastLine is the last non-empty line of a termination message: with
// FallbackToLogsOnError (core/controlplane) it is the end of the container's log, whose last
// line says why it exited.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
