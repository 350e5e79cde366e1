package sleep

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/exposure"
)

const (
	defaultReadyTimeout = 3 * time.Minute
	dialTimeout         = 5 * time.Second
	// touchTimeout and backendCallTimeout bound one API round trip made for a held connection.
	touchTimeout       = 10 * time.Second
	backendCallTimeout = 10 * time.Second
	// retryInterval is how soon a failed listen or list is tried again without waiting for an
	// EndpointSlice event.
	retryInterval = 5 * time.Second
	// Backend polling backoff: quick at first, an apiserver starts in seconds. A change of the
	// TCP's Deployment asks again at once (its ready replicas follow the pod's readiness), so
	// the backoff only bounds how late a missed event is made up for.
	pollFirst = 100 * time.Millisecond
	pollMax   = time.Second
	// drainFinish is how long a stopping server gives the connections it holds or relays to end,
	// once its ports are closed: a wake takes seconds. It runs after the manager's shutdown delay
	// (core/manager.SignalContext), during which the server goes on taking connections; the chart
	// sets the pod's termination grace period to the delay plus 20 s, room for both.
	drainFinish = 10 * time.Second
)

// WakeServer listens on the wake port of every sleeping TCP (the port of its wake
// EndpointSlice), so the TCP's Service leads clients here. It holds each connection, wakes the
// TCP (a forced Touch) and, once an apiserver pod is ready, relays the connection to it. It runs
// on every manager replica: the wake slice lists them all.
type WakeServer struct {
	// Slices reads the wake EndpointSlices (cached).
	Slices client.Reader
	// Informers gives the EndpointSlice informer whose events trigger a sync, and the
	// Deployment informer whose events make a held connection's poller ask Backend at once;
	// required by Start.
	Informers cache.Informers
	// Toucher records the wake.
	Toucher Toucher
	// Backend returns "ip:port" of a ready apiserver pod of the TCP, or "" while none is.
	Backend func(ctx context.Context, key types.NamespacedName) (string, error)
	// ListenHost is the address listened on; "" is all addresses.
	ListenHost string
	// ReadyTimeout is how long a connection is held for an apiserver pod; 0 is 3 minutes.
	ReadyTimeout time.Duration
	Log          logr.Logger

	// The poller's backoff between Backend calls (0: pollFirst and pollMax); tests set them.
	pollFirst, pollMax time.Duration
	// after times the drain (time.After when nil); tests end it when they choose.
	after func(time.Duration) <-chan time.Time

	initOnce sync.Once
	ctx      context.Context // cancelled by stop: ends held connections and pollers
	cancel   context.CancelFunc
	trigger  chan struct{}
	held     atomic.Int64
	wg       sync.WaitGroup // accept loops, connections, pollers

	mu        sync.Mutex
	stopped   bool
	listeners map[int32]*wakeListener
	waiters   map[types.NamespacedName]*backendWaiter
}

var (
	_ manager.Runnable               = (*WakeServer)(nil)
	_ manager.LeaderElectionRunnable = (*WakeServer)(nil)
)

// wakeListener is one open wake port; key is guarded by WakeServer.mu (a port may be re-mapped).
type wakeListener struct {
	ln  net.Listener
	key types.NamespacedName
}

// backendWaiter polls Backend for one TCP on behalf of all the connections held for it.
type backendWaiter struct {
	refs   int           // held connections, guarded by WakeServer.mu
	poke   chan struct{} // a Deployment event: ask Backend now
	ready  chan struct{}
	addr   string // set before ready is closed
	cancel context.CancelFunc
}

// NeedLeaderElection is false: every replica is an endpoint of the wake slices.
func (w *WakeServer) NeedLeaderElection() bool { return false }

// Held is the number of connections waiting for their TCP to wake.
func (w *WakeServer) Held() int { return int(w.held.Load()) }

func (w *WakeServer) init() {
	w.initOnce.Do(func() {
		w.ctx, w.cancel = context.WithCancel(context.Background())
		w.trigger = make(chan struct{}, 1)
		w.listeners = map[int32]*wakeListener{}
		w.waiters = map[types.NamespacedName]*backendWaiter{}
	})
}

// Start syncs the listeners with the wake EndpointSlices on every change of one, until ctx is
// done; then it closes the listeners, gives the connections it holds or relays drainFinish to
// end (their tenants wake meanwhile), and closes what is left. The manager's shutdown delay,
// before ctx ends, is when a stopping manager still takes wake connections: its pod leaves the
// wake EndpointSlices and kube-proxy's rules meanwhile.
func (w *WakeServer) Start(ctx context.Context) error {
	switch {
	case w.Informers == nil:
		return errors.New("wake server: Informers is not set")
	case w.Slices == nil:
		return errors.New("wake server: Slices is not set")
	case w.Toucher == nil:
		return errors.New("wake server: Toucher is not set")
	case w.Backend == nil:
		return errors.New("wake server: Backend is not set")
	}
	w.init()
	defer w.stop()
	inf, err := w.Informers.GetInformer(ctx, &discoveryv1.EndpointSlice{})
	if err != nil {
		return fmt.Errorf("wake server: EndpointSlice informer: %w", err)
	}
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.kickIf(obj) },
		UpdateFunc: func(old, obj any) { w.kickIf(old); w.kickIf(obj) },
		DeleteFunc: func(obj any) { w.kickIf(obj) },
	})
	if err != nil {
		return fmt.Errorf("wake server: EndpointSlice event handler: %w", err)
	}
	defer func() { _ = inf.RemoveEventHandler(reg) }()
	depInf, err := w.Informers.GetInformer(ctx, &appsv1.Deployment{})
	if err != nil {
		return fmt.Errorf("wake server: Deployment informer: %w", err)
	}
	depReg, err := depInf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.pokeFor(obj) },
		UpdateFunc: func(_, obj any) { w.pokeFor(obj) },
	})
	if err != nil {
		return fmt.Errorf("wake server: Deployment event handler: %w", err)
	}
	defer func() { _ = depInf.RemoveEventHandler(depReg) }()

	w.kick()
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			// Before the event handlers go: a held connection's poller still hears of its
			// TCP's Deployment while draining.
			w.drain()
			return nil
		case <-w.trigger:
		case <-retry:
		}
		retry = nil
		var list discoveryv1.EndpointSliceList
		if err := w.Slices.List(ctx, &list, client.HasLabels{WakeLabel}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.Log.Error(err, "wake server: list wake EndpointSlices")
			retry = time.After(retryInterval)
			continue
		}
		if !w.sync(list.Items) {
			retry = time.After(retryInterval)
		}
	}
}

// kickIf triggers a sync when obj is a wake slice; a sync already pending covers it.
func (w *WakeServer) kickIf(obj any) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if m, ok := obj.(metav1.Object); ok {
		if _, wake := m.GetLabels()[WakeLabel]; !wake {
			return
		}
	}
	w.kick()
}

// pokeFor makes the poller of the TCP owning a Deployment, if connections wait for it, ask
// Backend now: the Deployment's status changed, perhaps because its apiserver pod is ready.
func (w *WakeServer) pokeFor(obj any) {
	key, ok := controllingTCP(obj)
	if !ok {
		return
	}
	w.mu.Lock()
	wt := w.waiters[key]
	w.mu.Unlock()
	if wt != nil {
		select {
		case wt.poke <- struct{}{}:
		default: // a poke already pending covers it
		}
	}
}

// controllingTCP is the TCP that controls obj (its controller owner reference), if any.
func controllingTCP(obj any) (types.NamespacedName, bool) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return types.NamespacedName{}, false
	}
	owner := metav1.GetControllerOf(m)
	if owner == nil || owner.Kind != "TenantControlPlane" || owner.APIVersion != kamajiv1alpha1.GroupVersion.String() {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: m.GetNamespace(), Name: owner.Name}, true
}

func (w *WakeServer) kick() {
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

// Sync makes the open listeners those the wake slices want: it opens the missing ones, closes
// those no longer wanted (their relayed connections go on) and re-maps a port to another TCP. A
// port that cannot be listened on is logged and tried again on the next Sync.
func (w *WakeServer) Sync(wake []discoveryv1.EndpointSlice) { w.sync(wake) }

// sync is Sync, reporting false when a port could not be listened on.
func (w *WakeServer) sync(wake []discoveryv1.EndpointSlice) bool {
	w.init()
	want := w.wantedPorts(wake)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return true
	}
	for port, l := range w.listeners {
		if _, ok := want[port]; !ok {
			_ = l.ln.Close()
			delete(w.listeners, port)
			w.Log.V(1).Info("wake port closed", "port", port, "tenantControlPlane", l.key)
		}
	}
	ok := true
	for port, key := range want {
		if l, open := w.listeners[port]; open {
			if l.key != key {
				w.Log.Info("wake port re-mapped", "port", port, "from", l.key, "tenantControlPlane", key)
				l.key = key
			}
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(w.ListenHost, strconv.Itoa(int(port))))
		if err != nil {
			w.Log.Error(err, "wake server: listen", "port", port, "tenantControlPlane", key)
			ok = false
			continue
		}
		l := &wakeListener{ln: ln, key: key}
		w.listeners[port] = l
		w.wg.Add(1)
		go w.serve(l)
		w.Log.V(1).Info("wake port open", "port", port, "tenantControlPlane", key)
	}
	return ok
}

// wantedPorts maps each wake port to its TCP. Slices are taken in name order, so when two
// claim one port (a controller bug) every replica keeps the same one.
func (w *WakeServer) wantedPorts(in []discoveryv1.EndpointSlice) map[int32]types.NamespacedName {
	sorted := slices.Clone(in)
	slices.SortFunc(sorted, func(a, b discoveryv1.EndpointSlice) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	want := map[int32]types.NamespacedName{}
	for _, s := range sorted {
		name := s.Labels[WakeLabel]
		if name == "" || len(s.Ports) != 1 || s.Ports[0].Port == nil {
			continue
		}
		if p := s.Ports[0].Protocol; p != nil && *p != corev1.ProtocolTCP {
			continue
		}
		port := *s.Ports[0].Port
		if port <= 0 || port > 65535 {
			continue
		}
		key := types.NamespacedName{Namespace: s.Namespace, Name: name}
		if prev, dup := want[port]; dup && prev != key {
			w.Log.Info("wake port claimed twice, keeping the first", "port", port, "tenantControlPlane", prev, "ignored", key)
			continue
		}
		want[port] = key
	}
	return want
}

func (w *WakeServer) serve(l *wakeListener) {
	defer w.wg.Done()
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off instead of spinning.
			w.Log.Error(err, "wake server: accept", "address", l.ln.Addr().String())
			select {
			case <-w.ctx.Done():
				return
			case <-time.After(pollFirst):
			}
			continue
		}
		w.mu.Lock()
		key := l.key
		w.mu.Unlock()
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.handle(conn, key)
		}()
	}
}

// handle wakes key, holds conn until an apiserver pod is ready and relays it there.
func (w *WakeServer) handle(conn net.Conn, key types.NamespacedName) {
	log := w.Log.WithValues("tenantControlPlane", key, "remote", conn.RemoteAddr().String())
	addr, err := w.await(key)
	if err != nil {
		log.Info("closing held connection", "reason", err.Error())
		_ = conn.Close()
		return
	}
	d := net.Dialer{Timeout: dialTimeout}
	backend, err := d.DialContext(w.ctx, "tcp", addr)
	if err != nil {
		log.Error(err, "wake server: dial the apiserver", "address", addr)
		_ = conn.Close()
		return
	}
	// A stopping manager ends its relays (clients reconnect, to the apiserver by then).
	stop := context.AfterFunc(w.ctx, func() { _ = conn.Close(); _ = backend.Close() })
	defer stop()
	relay(conn, backend)
}

// await wakes key and waits for a ready apiserver address, sharing one poller among the
// connections held for key.
func (w *WakeServer) await(key types.NamespacedName) (string, error) {
	w.held.Add(1)
	defer w.held.Add(-1)
	tctx, cancel := context.WithTimeout(w.ctx, touchTimeout)
	if err := w.Toucher.Touch(tctx, key, true); err != nil {
		// The connection may still be relayed if the TCP wakes for another reason.
		w.Log.Error(err, "wake server: record the wake", "tenantControlPlane", key)
	}
	cancel()

	wt := w.join(key)
	defer w.leave(key, wt)
	timeout := cmp.Or(w.ReadyTimeout, defaultReadyTimeout)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-wt.ready:
		return wt.addr, nil
	case <-timer.C:
		return "", fmt.Errorf("no apiserver pod ready within %s", timeout)
	case <-w.ctx.Done():
		return "", errors.New("wake server stopping")
	}
}

func (w *WakeServer) join(key types.NamespacedName) *backendWaiter {
	w.mu.Lock()
	defer w.mu.Unlock()
	wt := w.waiters[key]
	if wt == nil {
		ctx, cancel := context.WithCancel(w.ctx)
		wt = &backendWaiter{poke: make(chan struct{}, 1), ready: make(chan struct{}), cancel: cancel}
		w.waiters[key] = wt
		w.wg.Add(1)
		go w.poll(ctx, key, wt)
	}
	wt.refs++
	return wt
}

// leave stops the poller once no connection waits on it any more.
func (w *WakeServer) leave(key types.NamespacedName, wt *backendWaiter) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wt.refs--
	if wt.refs == 0 && w.waiters[key] == wt {
		delete(w.waiters, key)
		wt.cancel()
	}
}

// poll asks Backend until it returns an address or ctx ends: after a backoff, or at once when
// the TCP's Deployment changes. Once ready the waiter is dropped: later connections start a new
// one, which finds the address on its first call.
func (w *WakeServer) poll(ctx context.Context, key types.NamespacedName, wt *backendWaiter) {
	defer w.wg.Done()
	defer wt.cancel()
	backoff, lastErr := cmp.Or(w.pollFirst, pollFirst), ""
	maxWait := cmp.Or(w.pollMax, pollMax)
	for {
		cctx, cancel := context.WithTimeout(ctx, backendCallTimeout)
		addr, err := w.Backend(cctx, key)
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			if err.Error() != lastErr { // once per distinct error, not once per poll
				w.Log.Error(err, "wake server: find a ready apiserver pod", "tenantControlPlane", key)
				lastErr = err.Error()
			}
		case addr != "":
			w.mu.Lock()
			wt.addr = addr
			close(wt.ready)
			if w.waiters[key] == wt {
				delete(w.waiters, key)
			}
			w.mu.Unlock()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-wt.poke:
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxWait)
	}
}

// drain is a stop's first part: it closes the listeners and gives the connections it holds or
// relays drainFinish to end. Without a wake port open there is none: it returns at once.
func (w *WakeServer) drain() {
	w.mu.Lock()
	open := len(w.listeners)
	w.mu.Unlock()
	w.closeListeners()
	if open == 0 {
		return
	}
	after := w.after
	if after == nil {
		after = time.After
	}
	ended := make(chan struct{})
	go func() {
		w.wg.Wait() // the accept loops have ended: only connections and their pollers count
		close(ended)
	}()
	select {
	case <-ended:
	case <-w.ctx.Done():
	case <-after(drainFinish):
		w.Log.Info("stopping: closing the wake connections still open", "held", w.Held())
	}
}

// closeListeners closes every wake port for good: a later sync opens none.
func (w *WakeServer) closeListeners() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	for port, l := range w.listeners {
		_ = l.ln.Close()
		delete(w.listeners, port)
	}
}

// stop closes the listeners, ends held connections and pollers, and waits for the relays.
func (w *WakeServer) stop() {
	w.init()
	w.closeListeners()
	w.cancel()
	w.wg.Wait()
}

// relay copies bytes both ways until both sides are done. A side that ends cleanly is passed
// on as a half-close, so a request body's end reaches the apiserver while its answer still
// flows back; an error on either side ends both.
func relay(client, backend net.Conn) {
	var (
		wg    sync.WaitGroup
		once  sync.Once
		abort = func() { once.Do(func() { _ = client.Close(); _ = backend.Close() }) }
	)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		if _, err := io.Copy(dst, src); err != nil {
			abort()
			return
		}
		if tc, ok := dst.(*net.TCPConn); !ok || tc.CloseWrite() != nil {
			abort()
		}
	}
	wg.Add(2)
	go pipe(backend, client)
	go pipe(client, backend)
	wg.Wait()
	abort()
}

// PodBackend finds a ready apiserver pod of a TCP: tcps reads the TCP (its port and labels),
// api lists the pods uncached (the cache may lag a pod's readiness by the time that matters).
func PodBackend(api client.Reader, tcps client.Reader) func(ctx context.Context, key types.NamespacedName) (string, error) {
	return func(ctx context.Context, key types.NamespacedName) (string, error) {
		tcp := &kamajiv1alpha1.TenantControlPlane{}
		if err := tcps.Get(ctx, key, tcp); err != nil {
			return "", fmt.Errorf("read the TenantControlPlane: %w", err)
		}
		var pods corev1.PodList
		if err := api.List(ctx, &pods, client.InNamespace(key.Namespace), client.MatchingLabels(exposure.Labels(tcp))); err != nil {
			return "", fmt.Errorf("list the apiserver pods: %w", err)
		}
		port := strconv.Itoa(int(exposure.Port(tcp)))
		for i := range pods.Items {
			if p := &pods.Items[i]; podReady(p) {
				return net.JoinHostPort(p.Status.PodIP, port), nil
			}
		}
		return "", nil
	}
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.PodIP == "" {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
