package node

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// ConditionImagesResolved is the pod condition the node sets to False, naming the image, when
// a container's image maps to no local binary.
const ConditionImagesResolved corev1.PodConditionType = "ImagesResolved"

// statusLoop pushes the pod status whenever the runner's state changes, until the pod is done.
func (r *podRunner) statusLoop() {
	for {
		select {
		case <-r.dirty:
		case <-r.done:
			return
		}
		if r.deletingNow() {
			continue
		}
		r.pushStatus()
		// Coalesce bursts of changes (a container start flips several fields).
		select {
		case <-time.After(50 * time.Millisecond):
		case <-r.done:
			return
		}
	}
}

func (r *podRunner) deletingNow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.deleting || r.ctx.Err() != nil
}

func (r *podRunner) pushStatus() {
	r.pushMu.Lock()
	defer r.pushMu.Unlock()
	pod := r.currentPod()
	pods, name := r.n.cs.CoreV1().Pods(pod.Namespace), pod.Name
	for attempt := 0; attempt < 5; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cur, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil || cur.UID != r.uid {
			cancel()
			return
		}
		st := r.buildStatus(cur)
		if equality.Semantic.DeepEqual(st, cur.Status) {
			cancel()
			return
		}
		cur.Status = st
		_, err = pods.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		cancel()
		if err == nil || apierrors.IsNotFound(err) {
			return
		}
		if !apierrors.IsConflict(err) {
			klog.ErrorS(err, "updating pod status", "pod", klog.KObj(cur))
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// buildStatus derives the pod status from the runner's state, keeping what others own
// (PodScheduled) and the transition times of unchanged conditions.
func (r *podRunner) buildStatus(cur *corev1.Pod) corev1.PodStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := *cur.Status.DeepCopy()
	now := metav1.Now()
	gw := r.n.cfg.Gateway.String()
	st.HostIP, st.HostIPs = gw, []corev1.HostIP{{IP: gw}}
	if r.sb != nil {
		ip := r.sb.IP.String()
		st.PodIP, st.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	}
	st.StartTime = &r.startTime
	st.QOSClass = qosClass(cur)

	var inits, apps []corev1.ContainerStatus
	allReady, anyRunning := true, false
	for _, c := range r.ctrs {
		started := c.started
		cs := corev1.ContainerStatus{
			Name: c.spec.Name, Image: c.image, ImageID: "local://" + c.image, ContainerID: c.id,
			State: *c.state.DeepCopy(), LastTerminationState: *c.last.DeepCopy(), RestartCount: c.restarts,
			Ready: c.ready, Started: &started,
		}
		if c.state.Running == nil || r.deleting {
			cs.Ready = false // a pod being deleted is taken out of its Services first
		}
		if c.last.Terminated != nil && c.state.Terminated != nil && c.last.Terminated == c.state.Terminated {
			// Just exited: the termination is the current state, not yet the last one.
			cs.LastTerminationState = corev1.ContainerState{}
		}
		if c.init {
			inits = append(inits, cs)
			continue
		}
		apps = append(apps, cs)
		if !cs.Ready {
			allReady = false
		}
		if c.state.Running != nil || c.restarts > 0 || c.state.Terminated != nil {
			anyRunning = true
		}
	}
	st.InitContainerStatuses, st.ContainerStatuses = inits, apps

	switch {
	case r.phase != "":
		st.Phase = r.phase
	case r.sb != nil && r.initDone && anyRunning:
		st.Phase = corev1.PodRunning
	default:
		st.Phase = corev1.PodPending
	}

	setCond := func(t corev1.PodConditionType, ok bool, reason, msg string) {
		s := corev1.ConditionFalse
		if ok {
			s = corev1.ConditionTrue
			reason, msg = "", ""
		}
		for i := range st.Conditions {
			if st.Conditions[i].Type == t {
				if st.Conditions[i].Status != s {
					st.Conditions[i].LastTransitionTime = now
				}
				st.Conditions[i].Status, st.Conditions[i].Reason, st.Conditions[i].Message = s, reason, msg
				return
			}
		}
		st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: s, Reason: reason, Message: msg, LastTransitionTime: now})
	}
	ready := allReady && r.initDone && r.phase == ""
	setCond(corev1.PodReadyToStartContainers, r.sb != nil, "", "")
	setCond(corev1.PodInitialized, r.initDone, "ContainersNotInitialized", "containers with incomplete status: init containers")
	setCond(corev1.ContainersReady, ready, "ContainersNotReady", "containers with unready status")
	setCond(corev1.PodReady, ready, "ContainersNotReady", "containers with unready status")
	if r.imageErr != "" {
		setCond(ConditionImagesResolved, false, "UnknownImage", r.imageErr)
	} else {
		for _, c := range st.Conditions {
			if c.Type == ConditionImagesResolved {
				setCond(ConditionImagesResolved, true, "", "")
			}
		}
	}
	return st
}

func qosClass(pod *corev1.Pod) corev1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	for _, c := range pod.Spec.Containers {
		if len(c.Resources.Requests) > 0 || len(c.Resources.Limits) > 0 {
			return corev1.PodQOSBurstable
		}
	}
	return corev1.PodQOSBestEffort
}
