package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// podRunner runs one pod: its sandbox, volumes, init containers, then its containers, each
// supervised (restarts, probes) until the pod is terminated.
type podRunner struct {
	n   *Node
	uid types.UID

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	dirty  chan struct{}

	pushMu sync.Mutex // one status update at a time: a later one is built from a later state

	mu        sync.Mutex
	pod       *corev1.Pod
	deleting  bool
	grace     time.Duration
	sb        *sandbox
	dir       string
	startTime metav1.Time
	initDone  bool
	imageErr  string
	phase     corev1.PodPhase // set once the pod ended (restart policy Never/OnFailure)
	ctrs      []*ctr
	volumes   map[string]string
}

// ctr is one container's state, guarded by the runner's mutex.
type ctr struct {
	spec     corev1.Container
	init     bool
	restarts int32
	state    corev1.ContainerState
	last     corev1.ContainerState
	started  bool
	ready    bool
	id       string
	image    string
}

func (n *Node) newRunner(pod *corev1.Pod) *podRunner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &podRunner{
		n: n, uid: pod.UID, ctx: ctx, cancel: cancel,
		done: make(chan struct{}), dirty: make(chan struct{}, 1),
		pod: pod.DeepCopy(),
		dir: filepath.Join(n.podsDir(), pod.Namespace+"_"+pod.Name+"_"+string(pod.UID)),
	}
	waiting := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	for _, c := range pod.Spec.InitContainers {
		r.ctrs = append(r.ctrs, &ctr{spec: *c.DeepCopy(), init: true, state: waiting, image: c.Image})
	}
	for _, c := range pod.Spec.Containers {
		r.ctrs = append(r.ctrs, &ctr{spec: *c.DeepCopy(), state: waiting, image: c.Image})
	}
	return r
}

func (r *podRunner) setPod(pod *corev1.Pod) {
	r.mu.Lock()
	r.pod = pod.DeepCopy()
	r.mu.Unlock()
}

// markDeleting records that the pod is being deleted; true the first time only.
func (r *podRunner) markDeleting() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.deleting {
		return false
	}
	r.deleting = true
	return true
}

// podIP is the sandbox's address, "" before it has one.
func (r *podRunner) podIP() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sb == nil {
		return ""
	}
	return r.sb.IP.String()
}

func (r *podRunner) currentPod() *corev1.Pod {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pod.DeepCopy()
}

func (r *podRunner) graceFor(pod *corev1.Pod) time.Duration {
	if pod == nil {
		pod = r.currentPod()
	}
	if pod.DeletionGracePeriodSeconds != nil {
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	}
	return time.Duration(ptr.Deref(pod.Spec.TerminationGracePeriodSeconds, 30)) * time.Second
}

// terminate stops every container (SIGTERM, then SIGKILL after grace) and removes the sandbox.
func (r *podRunner) terminate(grace time.Duration) {
	r.mu.Lock()
	r.grace = grace
	r.mu.Unlock()
	r.cancel()
	<-r.done
}

func (r *podRunner) markDirty() {
	select {
	case r.dirty <- struct{}{}:
	default:
	}
}

func (r *podRunner) event(kind, reason, format string, args ...any) {
	r.n.recorder.Eventf(r.currentPod(), kind, reason, format, args...)
}

// wait sleeps for d unless the pod is terminated first.
func (r *podRunner) wait(d time.Duration) bool {
	select {
	case <-r.ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func (r *podRunner) run() {
	statusDone := make(chan struct{})
	go func() { r.statusLoop(); close(statusDone) }()
	defer func() {
		r.mu.Lock()
		sb := r.sb
		r.mu.Unlock()
		r.n.teardown(sb)
		_ = os.RemoveAll(r.dir)
		close(r.done)
		<-statusDone
	}()

	r.mu.Lock()
	r.startTime = metav1.Now()
	r.mu.Unlock()
	pod := r.currentPod()

	for {
		sb, err := r.n.setupSandbox(string(r.uid))
		if err == nil {
			r.mu.Lock()
			r.sb = sb
			r.mu.Unlock()
			break
		}
		r.event(corev1.EventTypeWarning, "FailedCreatePodSandBox", "network namespace: %v", err)
		if !r.wait(2 * time.Second) {
			return
		}
	}
	// The downward API may ask for the pod IP: hand it to the copy volumes read.
	r.mu.Lock()
	r.pod.Status.PodIP = r.sb.IP.String()
	r.mu.Unlock()
	r.markDirty()

	imageBackoff := 2 * time.Second
	for {
		pod = r.currentPod()
		vols, err := r.n.materializeVolumes(r.ctx, pod, filepath.Join(r.dir, "volumes"))
		if err == nil {
			err = r.writeHosts(pod)
		}
		if err == nil {
			r.mu.Lock()
			r.volumes = vols
			r.mu.Unlock()
			r.imageVolumeResolved()
			break
		}
		if r.ctx.Err() != nil {
			return
		}
		var unknown *UnknownImageError
		if errors.As(err, &unknown) {
			// An image volume's image is pulled like a container's: no container can start.
			r.imageVolumeFailed(err)
			if !r.wait(imageBackoff) {
				return
			}
			imageBackoff = min(2*imageBackoff, 30*time.Second)
			continue
		}
		r.event(corev1.EventTypeWarning, "FailedMount", "%v", err)
		if !r.wait(2 * time.Second) {
			return
		}
	}

	for _, c := range r.ctrs {
		if !c.init {
			continue
		}
		if !r.runInit(c) {
			return
		}
	}
	r.mu.Lock()
	r.initDone = true
	r.mu.Unlock()
	r.markDirty()

	var wg sync.WaitGroup
	for _, c := range r.ctrs {
		if c.init {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); r.supervise(c) }()
	}
	wg.Wait()
	if r.ctx.Err() == nil {
		r.finish()
		<-r.ctx.Done()
	}
}

// runInit runs an init container to success; false when the pod ended or was terminated.
func (r *podRunner) runInit(c *ctr) bool {
	backoff := time.Second
	for {
		code, err := r.runOnce(c)
		if r.ctx.Err() != nil {
			return false
		}
		if err == nil && code == 0 {
			return true
		}
		if err == nil && r.currentPod().Spec.RestartPolicy == corev1.RestartPolicyNever {
			r.mu.Lock()
			r.phase = corev1.PodFailed
			r.mu.Unlock()
			r.markDirty()
			<-r.ctx.Done()
			return false
		}
		if err == nil {
			r.mu.Lock()
			c.restarts++
			r.mu.Unlock()
		}
		if !r.wait(backoff) {
			return false
		}
		backoff = min(2*backoff, time.Minute)
	}
}

// supervise runs a container and restarts it according to the pod's restart policy, with an
// exponential back-off (1 s doubling to 1 min, reset after two minutes of running).
func (r *podRunner) supervise(c *ctr) {
	backoff := time.Second
	for {
		start := time.Now()
		code, err := r.runOnce(c)
		if r.ctx.Err() != nil {
			return
		}
		if err != nil {
			// Could not start (unknown image, missing Secret key...): retry, reported as waiting.
			if !r.wait(backoff) {
				return
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		policy := r.currentPod().Spec.RestartPolicy
		if policy == corev1.RestartPolicyNever || (policy == corev1.RestartPolicyOnFailure && code == 0) {
			return
		}
		if time.Since(start) > 2*time.Minute {
			backoff = time.Second
		}
		r.mu.Lock()
		c.restarts++
		c.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason: "CrashLoopBackOff", Message: fmt.Sprintf("back-off %s restarting failed container %s", backoff, c.spec.Name),
		}}
		r.mu.Unlock()
		r.markDirty()
		r.event(corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s", c.spec.Name)
		if !r.wait(backoff) {
			return
		}
		backoff = min(2*backoff, time.Minute)
	}
}

// finish records the end of a pod whose containers all exited for good.
func (r *podRunner) finish() {
	r.mu.Lock()
	phase := corev1.PodSucceeded
	for _, c := range r.ctrs {
		if !c.init && (c.state.Terminated == nil || c.state.Terminated.ExitCode != 0) {
			phase = corev1.PodFailed
		}
	}
	r.phase = phase
	r.mu.Unlock()
	r.markDirty()
}

func (r *podRunner) setWaiting(c *ctr, reason, msg string) {
	r.mu.Lock()
	c.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
	r.mu.Unlock()
	r.markDirty()
}

// imageVolumeFailed reports an image volume whose image maps to no local binary as the kubelet
// reports a failed pull: every container waits with ErrImagePull and an event names the image.
func (r *podRunner) imageVolumeFailed(err error) {
	r.mu.Lock()
	r.imageErr = err.Error()
	for _, c := range r.ctrs {
		c.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: err.Error()}}
	}
	r.mu.Unlock()
	r.markDirty()
	r.event(corev1.EventTypeWarning, "UnknownImage", "%v", err)
}

// imageVolumeResolved undoes imageVolumeFailed once the volumes are in place.
func (r *podRunner) imageVolumeResolved() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.imageErr == "" {
		return
	}
	r.imageErr = ""
	for _, c := range r.ctrs {
		c.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	}
	r.markDirty()
}

// runOnce starts the container and waits until it exits, is killed by a failing probe, or the
// pod is terminated. err means it could not start at all.
func (r *podRunner) runOnce(c *ctr) (int, error) {
	pod := r.currentPod()
	images, err := r.n.images()
	if err != nil {
		r.setWaiting(c, "InvalidImageMap", err.Error())
		r.event(corev1.EventTypeWarning, "Failed", "%v", err)
		return 0, err
	}
	img, err := images.Resolve(c.spec.Image)
	if err != nil {
		var unknown *UnknownImageError
		if errors.As(err, &unknown) && len(unknown.Build) > 0 && r.n.builds.Script != "" {
			// Built on demand, as a kubelet would pull it: the container waits meanwhile.
			r.n.builds.Forget(unknown.Build) // built before, deleted since
			st := r.n.builds.Ensure(unknown.Build)
			switch {
			case st.Done:
				img, err = images.Resolve(c.spec.Image)
			case st.Err != nil:
				r.setWaiting(c, "ErrImagePull", st.Msg)
				r.event(corev1.EventTypeWarning, "Failed", "Failed to build image %q: %s", c.spec.Image, st.Msg)
				return 0, st.Err
			default:
				if st.Started {
					r.event(corev1.EventTypeNormal, "Pulling", "Building image %q: %s", c.spec.Image, st.Msg)
				}
				r.setWaiting(c, "ContainerCreating", st.Msg)
				return 0, errors.New(st.Msg)
			}
		}
	}
	if err != nil {
		var unknown *UnknownImageError
		if errors.As(err, &unknown) {
			r.mu.Lock()
			r.imageErr = err.Error()
			r.mu.Unlock()
		}
		r.setWaiting(c, "ErrImagePull", err.Error())
		r.event(corev1.EventTypeWarning, "UnknownImage", "%v", err)
		return 0, err
	}
	r.mu.Lock()
	r.imageErr = ""
	r.mu.Unlock()
	env, vars, err := r.n.containerEnv(r.ctx, pod, &c.spec, img)
	if err != nil {
		r.setWaiting(c, "CreateContainerConfigError", err.Error())
		r.event(corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return 0, err
	}
	r.mu.Lock()
	attempt := c.restarts
	sb, vols := r.sb, r.volumes
	r.mu.Unlock()
	spec := ContainerSpec{
		NetNS: sb.nsPath(), Hostname: podHostname(pod),
		Scratch: filepath.Join(r.dir, "scratch", fmt.Sprintf("%s-%d", c.spec.Name, attempt)),
		Env:     env, Dir: c.spec.WorkingDir,
	}
	imageVolumes := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		if v.Image != nil {
			imageVolumes[v.Name] = true
		}
	}
	hostsMounted := false
	if img.MountImageDir {
		// The container sees its image's binaries where the image has them, so that its
		// arguments may name them (`kamaji plugin install /usr/local/bin/kamaji-...`).
		spec.Mounts = append(spec.Mounts, Mount{Source: img.Dir, Target: img.ImageDir, ReadOnly: true})
	}
	for _, m := range c.spec.VolumeMounts {
		src, ok := vols[m.Name]
		if !ok {
			err := fmt.Errorf("volume %q is not in the pod", m.Name)
			r.setWaiting(c, "CreateContainerConfigError", err.Error())
			return 0, err
		}
		sub := m.SubPath
		if m.SubPathExpr != "" {
			sub = Expand(m.SubPathExpr, vars)
		}
		if sub != "" {
			src = filepath.Join(src, filepath.Clean("/"+sub))
		}
		if m.MountPath == "/etc/hosts" {
			hostsMounted = true
		}
		// An image volume is read-only, as the kubelet mounts it; its folder links to binaries the
		// node shares with every pod.
		spec.Mounts = append(spec.Mounts, Mount{Source: src, Target: m.MountPath, ReadOnly: m.ReadOnly || imageVolumes[m.Name]})
	}
	if !hostsMounted {
		spec.Mounts = append(spec.Mounts, Mount{Source: filepath.Join(r.dir, "hosts"), Target: "/etc/hosts", ReadOnly: true})
	}
	spec.Path, spec.Args, err = commandLine(&c.spec, img, vars, spec.Mounts)
	if err != nil {
		r.setWaiting(c, "CreateContainerError", err.Error())
		r.event(corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return 0, err
	}
	specDir := filepath.Join(r.dir, "containers")
	logDir := filepath.Join(r.dir, "logs")
	for _, d := range []string{specDir, logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return 0, err
		}
	}
	specPath := filepath.Join(specDir, fmt.Sprintf("%s-%d.json", c.spec.Name, attempt))
	data, _ := json.Marshal(spec)
	if err := os.WriteFile(specPath, data, 0o600); err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(filepath.Join(logDir, c.spec.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "==> %s start #%d (%s)\n", time.Now().Format(time.RFC3339), attempt, specPath)
	logStart, _ := logf.Seek(0, io.SeekCurrent)

	cmd := exec.Command(r.n.cfg.SelfExe, "local", "run-container", specPath)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Unshareflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS}
	if err := cmd.Start(); err != nil {
		r.setWaiting(c, "RunContainerError", err.Error())
		r.event(corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return 0, err
	}
	started := metav1.Now()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()

	r.mu.Lock()
	c.id = "local://" + strconv.Itoa(cmd.Process.Pid)
	c.state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}
	c.started, c.ready = false, false
	r.mu.Unlock()
	r.markDirty()
	r.event(corev1.EventTypeNormal, "Started", "Started container %s", c.spec.Name)

	probeCtx, stopProbes := context.WithCancel(r.ctx)
	kill := make(chan string, 1)
	go r.probe(probeCtx, c, sb.IP.String(), started.Time, kill)

	reason := ""
	select {
	case <-exited:
	case reason = <-kill:
		r.event(corev1.EventTypeNormal, "Killing", "Container %s %s, will be restarted", c.spec.Name, reason)
		r.stopProcess(cmd, exited, r.graceFor(nil))
	case <-r.ctx.Done():
		r.mu.Lock()
		grace := r.grace
		r.mu.Unlock()
		r.event(corev1.EventTypeNormal, "Killing", "Stopping container %s", c.spec.Name)
		r.stopProcess(cmd, exited, grace)
	}
	stopProbes()
	code := exitCode(cmd.ProcessState)
	term := &corev1.ContainerStateTerminated{ExitCode: int32(code), StartedAt: started, FinishedAt: metav1.Now(), ContainerID: c.id, Reason: "Completed"}
	if code != 0 {
		term.Reason = "Error"
	}
	if reason != "" {
		term.Message = reason
	} else if code != 0 && c.spec.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		term.Message = logTail(logf.Name(), logStart)
	}
	fmt.Fprintf(logf, "==> %s exit %d %s\n", time.Now().Format(time.RFC3339), code, reason)
	r.mu.Lock()
	c.state = corev1.ContainerState{Terminated: term}
	c.last = c.state
	c.started, c.ready = false, false
	r.mu.Unlock()
	r.markDirty()
	return code, nil
}

// stopProcess sends SIGTERM to the container's process group, and SIGKILL after grace.
func (r *podRunner) stopProcess(cmd *exec.Cmd, exited <-chan struct{}, grace time.Duration) {
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}
	// Whatever the container left in its group goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// writeHosts writes the pod's /etc/hosts. Besides the pod's own names and host aliases it
// names every Service of the admin cluster that has a cluster IP (<svc>.<ns>.svc and
// <svc>.<ns>.svc.cluster.local), standing in for the cluster DNS the local plane does not run:
// the tenants' kube-apiservers call the manager's webhook by its Service name. The file is
// written at pod start and rewritten in place when the Services change (hosts.go), as a DNS
// answer would change: a Service installed again gets a new cluster IP.
func (r *podRunner) writeHosts(pod *corev1.Pod) error {
	return r.writeHostsWith(pod, r.n.serviceHosts(r.ctx))
}

func (r *podRunner) writeHostsWith(pod *corev1.Pod, services []string) error {
	r.mu.Lock()
	sb := r.sb
	r.mu.Unlock()
	if sb == nil {
		return nil // no sandbox yet: the pod's start writes it
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	// In place (same inode): the containers see the file through a bind mount.
	return os.WriteFile(filepath.Join(r.dir, "hosts"), []byte(hostsFile(sb.IP.String(), pod, services)), 0o644)
}

func hostsFile(ip string, pod *corev1.Pod, services []string) string {
	hosts := fmt.Sprintf("# Kubernetes-managed hosts file (kamaji local node).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n", ip, podHostname(pod))
	for _, h := range pod.Spec.HostAliases {
		hosts += h.IP + "\t" + strings.Join(h.Hostnames, "\t") + "\n"
	}
	if len(services) > 0 {
		hosts += "# Services of the admin cluster, as of the pod's start (no cluster DNS).\n"
		for _, l := range services {
			hosts += l + "\n"
		}
	}
	return hosts
}

// serviceHosts lists the hosts lines of the admin cluster's Services, sorted by namespace and
// name; nil when they cannot be listed (the pod starts anyway, without them).
func (n *Node) serviceHosts(ctx context.Context) []string {
	var svcs []corev1.Service
	if cached, ok := n.cachedServices(); ok {
		svcs = cached
	} else {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		list, err := n.cs.CoreV1().Services("").List(ctx, metav1.ListOptions{})
		if err != nil {
			klog.ErrorS(err, "listing Services for the pods' hosts files; they are left out")
			return nil
		}
		svcs = list.Items
	}
	sort.Slice(svcs, func(i, j int) bool {
		if svcs[i].Namespace != svcs[j].Namespace {
			return svcs[i].Namespace < svcs[j].Namespace
		}
		return svcs[i].Name < svcs[j].Name
	})
	var lines []string
	for _, s := range svcs {
		ips := s.Spec.ClusterIPs
		if len(ips) == 0 && s.Spec.ClusterIP != "" {
			ips = []string{s.Spec.ClusterIP}
		}
		for _, ip := range ips {
			if ip == "" || ip == corev1.ClusterIPNone {
				continue
			}
			name := s.Name + "." + s.Namespace + ".svc"
			lines = append(lines, ip+"\t"+name+"\t"+name+".cluster.local")
		}
	}
	return lines
}

// logTail is what a kubelet puts in the status of a container that exits with an error under
// FallbackToLogsOnError: the end of its log from this start, at most 80 lines and 2048 bytes.
func logTail(path string, from int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const maxBytes, maxLines = 2048, 80
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	if st.Size()-from > maxBytes {
		from = st.Size() - maxBytes
	}
	buf := make([]byte, st.Size()-from)
	if _, err := f.ReadAt(buf, from); err != nil && err != io.EOF {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(buf), "\n"), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return strings.Join(lines, "\n")
}
