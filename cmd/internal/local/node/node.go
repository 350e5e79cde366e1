// Package node is the local plane's process node: it registers a Node in the admin cluster and
// runs the pods bound to it as real processes, each pod in its own network namespace with an
// address on the host bridge, each container in a private mount namespace where the pod's
// volumes are bind-mounted at their container paths. Images map to binaries built on this
// machine (images.yaml). Probes drive readiness and restarts; restart policies and graceful
// termination follow the kubelet's rules. securityContext is not applied: containers run as
// root, with the node's capabilities.
package node

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/openhcp/kamaji/cmd/internal/local/kubebuild"
)

// Environment variables that mark the processes of a local plane: every process the plane
// starts carries MarkerEnv=<state dir>, and containers also ContainerEnv=<pod uid>, so that a
// restarted node and `kamaji local down` find their own processes and nobody else's.
const (
	MarkerEnv    = "KAMAJI_LOCAL_STATE"
	ContainerEnv = "KAMAJI_LOCAL_POD"
)

// Config of the node.
type Config struct {
	Name     string
	StateDir string
	// Bridge, PodCIDR and Gateway (the bridge's address, also the node's InternalIP).
	Bridge  string
	PodCIDR *net.IPNet
	Gateway net.IP
	// ImagesFile maps images to binaries; Cache is the kamaji cache folder ($cache in it).
	ImagesFile string
	Cache      string
	// BinDir is the folder make build fills ($bin in the image map): the project's own images.
	BinDir string
	// KubeBins is hack/kube-bins.sh, run to build the binaries of an image whose folder is
	// missing when its image rule says how (a tenant at a version not built yet); empty: never.
	KubeBins string
	// SelfExe is the kamaji binary, re-executed as `kamaji local run-container`.
	SelfExe string
	// APIServiceHost/Port are the admin cluster's kubernetes Service (KUBERNETES_SERVICE_*).
	APIServiceHost string
	APIServicePort string
	KubeletVersion string
}

// Node runs the pods bound to it.
type Node struct {
	cfg      Config
	cs       kubernetes.Interface
	recorder record.EventRecorder
	ipam     *ipam

	svc    serviceCache // hosts.go
	mu     sync.Mutex
	pods   map[types.UID]*podRunner
	wg     sync.WaitGroup
	builds *kubebuild.Builds
}

// New returns a node; Run starts it.
func New(cfg Config, cs kubernetes.Interface) *Node {
	return &Node{cfg: cfg, cs: cs, ipam: newIPAM(cfg.PodCIDR, cfg.Gateway), pods: map[types.UID]*podRunner{},
		// A waiting container asks again at least every 30 s (its back-off): a build nobody has
		// asked for in 2 minutes is for a pod that is gone.
		builds: &kubebuild.Builds{Script: cfg.KubeBins, Cache: cfg.Cache, LogDir: filepath.Join(cfg.StateDir, "logs"), Unwanted: 2 * time.Minute}}
}

// Run registers the node and runs pods until ctx ends, then stops every container (with
// their grace periods, up to ShutdownGrace, or TeardownGrace when the plane goes down) and
// removes their network namespaces.
func (n *Node) Run(ctx context.Context) error {
	n.builds.Ctx = ctx
	n.cleanupLeftovers()
	if err := os.MkdirAll(n.podsDir(), 0o755); err != nil {
		return err
	}
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: n.cs.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	n.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: n.cfg.Name})

	if err := n.register(ctx); err != nil {
		return fmt.Errorf("registering node %s: %w", n.cfg.Name, err)
	}
	go n.heartbeat(ctx)
	n.watchServices(ctx)

	factory := informers.NewSharedInformerFactoryWithOptions(n.cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", n.cfg.Name).String()
	}))
	inf := factory.Core().V1().Pods().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { n.sync(obj.(*corev1.Pod)) },
		UpdateFunc: func(_, obj any) { n.sync(obj.(*corev1.Pod)) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				n.gone(pod)
			}
		},
	})
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
	n.shutdown()
	return nil
}

// ShutdownGrace caps the containers' grace period when the node itself stops.
const ShutdownGrace = 10 * time.Second

// TeardownGrace caps it instead when the whole plane goes away: `kamaji local down` leaves
// TeardownFile in the state folder before it stops the node. Nothing a pod holds outlives the
// plane then, and waiting out the manager's shutdown delay (10 s, for clients still routed to
// a pod leaving in a rollout) would only make `down` that much slower.
const TeardownGrace = 2 * time.Second

// TeardownFile, in the node's state folder, says the plane is being taken down.
const TeardownFile = "tearing-down"

// shutdownGrace caps the containers' grace periods as the node stops.
func shutdownGrace(stateDir string) time.Duration {
	if _, err := os.Stat(filepath.Join(stateDir, TeardownFile)); err == nil {
		return TeardownGrace
	}
	return ShutdownGrace
}

func (n *Node) shutdown() {
	limit := shutdownGrace(n.cfg.StateDir)
	n.mu.Lock()
	runners := make([]*podRunner, 0, len(n.pods))
	for _, r := range n.pods {
		runners = append(runners, r)
	}
	n.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.terminate(min(r.graceFor(nil), limit))
		}()
	}
	wg.Wait()
}

// images reads the image map, as edited now.
func (n *Node) images() (*ImageMap, error) {
	m, err := LoadImages(n.cfg.ImagesFile, n.cfg.Cache)
	if err != nil {
		return nil, err
	}
	m.Bin = n.cfg.BinDir
	return m, nil
}

func (n *Node) podsDir() string { return filepath.Join(n.cfg.StateDir, "pods") }

// sync reacts to a pod bound to the node: start it, or stop it when it is being deleted.
func (n *Node) sync(pod *corev1.Pod) {
	n.mu.Lock()
	defer n.mu.Unlock()
	r := n.pods[pod.UID]
	switch {
	case r == nil && pod.DeletionTimestamp != nil:
		// Nothing runs (anymore): let the API server forget it.
		r = n.newRunner(pod)
		n.pods[pod.UID] = r
		close(r.done)
		go n.finishDeletion(r, pod, 0)
	case r == nil:
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			return
		}
		r = n.newRunner(pod)
		n.pods[pod.UID] = r
		go r.run()
	default:
		r.setPod(pod)
		if pod.DeletionTimestamp != nil && r.markDeleting() {
			go n.finishDeletion(r, pod, r.graceFor(pod))
		}
	}
}

func (n *Node) finishDeletion(r *podRunner, pod *corev1.Pod, grace time.Duration) {
	start := time.Now()
	if ip := r.podIP(); ip != "" {
		// Not ready, then out of every Service, before the first signal (unroute.go).
		r.pushStatus()
		waited, routed := waitUnrouted(ip, min(grace/2, unrouteMax))
		if routed {
			klog.InfoS("Services still route to the pod; stopping it anyway", "pod", klog.KObj(pod), "ip", ip, "waited", waited)
		} else {
			klog.InfoS("no Service routes to the pod anymore; stopping it", "pod", klog.KObj(pod), "ip", ip, "waited", waited)
		}
	}
	r.terminate(max(grace-time.Since(start), 0))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := n.cs.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		klog.ErrorS(err, "deleting pod", "pod", klog.KObj(pod))
	}
	n.mu.Lock()
	delete(n.pods, pod.UID)
	n.mu.Unlock()
}

// gone: the pod object was removed (force deletion): stop what runs.
func (n *Node) gone(pod *corev1.Pod) {
	n.mu.Lock()
	r := n.pods[pod.UID]
	delete(n.pods, pod.UID)
	n.mu.Unlock()
	if r != nil {
		go r.terminate(r.graceFor(pod))
	}
}

func (n *Node) capacity() corev1.ResourceList {
	mem := int64(8 << 30)
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) >= 2 && fs[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(fs[1], 10, 64); err == nil {
					mem = kb * 1024
				}
			}
		}
		f.Close()
	}
	return corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(mem, resource.BinarySI),
		corev1.ResourcePods:             resource.MustParse("250"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
}

func (n *Node) nodeStatus(now metav1.Time) corev1.NodeStatus {
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	capacity := n.capacity()
	return corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "the local process node runs pods as processes"),
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: n.cfg.Gateway.String()},
			{Type: corev1.NodeHostName, Address: n.cfg.Name},
		},
		NodeInfo: corev1.NodeSystemInfo{
			KubeletVersion:          n.cfg.KubeletVersion,
			OperatingSystem:         "linux",
			Architecture:            runtime.GOARCH,
			ContainerRuntimeVersion: "kamaji-local://1",
			KernelVersion:           kernelVersion(),
			OSImage:                 "kamaji local plane",
		},
	}
}

func kernelVersion() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return ""
	}
	b := make([]byte, 0, len(u.Release))
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}

func (n *Node) register(ctx context.Context) error {
	nodes := n.cs.CoreV1().Nodes()
	want := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.cfg.Name, Labels: map[string]string{
			"kubernetes.io/hostname":       n.cfg.Name,
			"kubernetes.io/os":             "linux",
			"kubernetes.io/arch":           runtime.GOARCH,
			"node.kamaji.clastix.io/local": "true",
		}},
		Spec: corev1.NodeSpec{PodCIDR: n.cfg.PodCIDR.String(), PodCIDRs: []string{n.cfg.PodCIDR.String()}},
	}
	var node *corev1.Node
	err := retryUntil(ctx, 30*time.Second, func() error {
		got, err := nodes.Get(ctx, n.cfg.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			got, err = nodes.Create(ctx, want, metav1.CreateOptions{})
		}
		node = got
		return err
	})
	if err != nil {
		return err
	}
	return retryUntil(ctx, 30*time.Second, func() error {
		cur, err := nodes.Get(ctx, n.cfg.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status = n.nodeStatus(metav1.Now())
		_, err = nodes.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		_ = node
		return err
	})
}

// heartbeat renews the node's Lease every 10 s and its Ready condition every minute.
func (n *Node) heartbeat(ctx context.Context) {
	leases := n.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	lastStatus := time.Now()
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		now := metav1.NewMicroTime(time.Now())
		l, err := leases.Get(ctx, n.cfg.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: n.cfg.Name, Namespace: corev1.NamespaceNodeLease},
				Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(n.cfg.Name), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: &now},
			}, metav1.CreateOptions{})
		case err == nil:
			l.Spec.RenewTime = &now
			_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
		}
		if err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "renewing the node lease")
		}
		if time.Since(lastStatus) > time.Minute {
			if err := n.register(ctx); err == nil {
				lastStatus = time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func retryUntil(ctx context.Context, d time.Duration, fn func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// cleanupLeftovers removes what an earlier node process left (it was killed): its containers
// and their network namespaces. The pods are then started afresh.
func (n *Node) cleanupLeftovers() {
	for _, pid := range MarkedProcesses(n.cfg.StateDir, true) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, ns := range ListNetNS(NetNSPrefix) {
		_ = IP("netns", "del", ns)
	}
	for _, l := range ListLinks(VethPrefix) {
		_ = IP("link", "del", l)
	}
	_ = os.RemoveAll(n.podsDir())
}

// MarkedProcesses lists the processes of the local plane with this state folder (only the
// containers when containersOnly), by their environment, never by name.
func MarkedProcesses(stateDir string, containersOnly bool) []int {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	want := []byte(MarkerEnv + "=" + stateDir)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		marked, container := false, false
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(kv, want) {
				marked = true
			}
			if bytes.HasPrefix(kv, []byte(ContainerEnv+"=")) {
				container = true
			}
		}
		if marked && (container || !containersOnly) {
			pids = append(pids, pid)
		}
	}
	return pids
}
