package sleep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// testDeadline bounds every wait; reaching it is a failure, never an expected path.
const testDeadline = 20 * time.Second

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, testDeadline, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func freePort(t *testing.T) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

func wakeSlice(tcp string, port int32) discoveryv1.EndpointSlice {
	name, proto := "kube-apiserver", corev1.ProtocolTCP
	return discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: WakeSliceName(tcp), Namespace: "tenants", Labels: map[string]string{
			WakeLabel: tcp, discoveryv1.LabelServiceName: tcp,
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}}},
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}},
	}
}

func tcpKey(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: "tenants", Name: name}
}

// fakeBackend answers the address set for a key, "" until then, and tracks how many calls run
// at once.
type fakeBackend struct {
	mu                  sync.Mutex
	addrs               map[types.NamespacedName]string
	inflight, maxFlight int
	calls               int
}

func (f *fakeBackend) set(key types.NamespacedName, addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.addrs == nil {
		f.addrs = map[types.NamespacedName]string{}
	}
	f.addrs[key] = addr
}

func (f *fakeBackend) get(_ context.Context, key types.NamespacedName) (string, error) {
	f.mu.Lock()
	f.calls++
	f.inflight++
	f.maxFlight = max(f.maxFlight, f.inflight)
	addr := f.addrs[key]
	f.mu.Unlock()
	// Let other goroutines run while "in flight", so overlapping calls, were there any, show.
	runtime.Gosched()
	f.mu.Lock()
	f.inflight--
	f.mu.Unlock()
	return addr, nil
}

func (f *fakeBackend) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeBackend) maxConcurrent() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxFlight
}

// serveTCP runs handle for every connection to a local listener; it returns the address.
func serveTCP(t *testing.T, handle func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c.(*net.TCPConn))
			}()
		}
	}()
	return ln.Addr().String()
}

// echoThenBye echoes until the client half-closes, then answers "bye": it proves both
// directions and the half-close cross the relay.
func echoThenBye(c *net.TCPConn) {
	if _, err := io.Copy(c, c); err != nil {
		return
	}
	_, _ = c.Write([]byte("bye"))
	_ = c.CloseWrite()
}

func newWakeServer(t *testing.T, tt Toucher, backend func(context.Context, types.NamespacedName) (string, error)) *WakeServer {
	t.Helper()
	w := &WakeServer{Toucher: tt, Backend: backend, ListenHost: "127.0.0.1", Log: logr.Discard()}
	t.Cleanup(w.stop)
	return w
}

func dialWake(t *testing.T, port int32) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))), testDeadline)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(testDeadline))
	return c.(*net.TCPConn)
}

// roundTrip sends msg, checks the echo, half-closes and expects "bye" then EOF.
func roundTrip(t *testing.T, c *net.TCPConn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo = %q, %v; want %q", buf, err, msg)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != "bye" {
		t.Fatalf("after half-close read %q, %v; want bye then EOF", rest, err)
	}
}

func TestWakeHoldsThenRelays(t *testing.T) {
	tt, be := &fakeToucher{}, &fakeBackend{}
	w := newWakeServer(t, tt, be.get)
	port := freePort(t)
	w.Sync([]discoveryv1.EndpointSlice{wakeSlice("a", port)})

	const n = 5
	conns := make([]*net.TCPConn, n)
	for i := range conns {
		conns[i] = dialWake(t, port)
	}
	eventually(t, "connections held", func() bool { return w.Held() == n })

	be.set(tcpKey("a"), serveTCP(t, echoThenBye))
	for i, c := range conns {
		roundTrip(t, c, "hello "+strconv.Itoa(i))
	}
	eventually(t, "no connection held", func() bool { return w.Held() == 0 })

	touches := tt.calls()
	if len(touches) != n {
		t.Errorf("touches = %v, want one per connection", touches)
	}
	for _, tc := range touches {
		if tc != (touchCall{tcpKey("a"), true}) {
			t.Errorf("touch %v, want a forced touch of tenants/a", tc)
		}
	}
	if m := be.maxConcurrent(); m != 1 {
		t.Errorf("%d Backend calls ran at once for one TCP, want one shared poller", m)
	}
}

func TestWakeListenerFollowsSlices(t *testing.T) {
	be := &fakeBackend{}
	w := newWakeServer(t, &fakeToucher{}, be.get)
	port := freePort(t)
	w.Sync([]discoveryv1.EndpointSlice{wakeSlice("a", port)})
	held := dialWake(t, port)
	eventually(t, "connection held", func() bool { return w.Held() == 1 })

	w.Sync(nil)
	if c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))); err == nil {
		c.Close()
		t.Fatal("port still open after its slice went")
	}
	// The connection accepted before goes on: it is relayed once the TCP is ready.
	be.set(tcpKey("a"), serveTCP(t, echoThenBye))
	roundTrip(t, held, "still here")
}

func TestWakeReadyTimeoutClosesConnection(t *testing.T) {
	w := newWakeServer(t, &fakeToucher{}, (&fakeBackend{}).get)
	w.ReadyTimeout = 200 * time.Millisecond
	port := freePort(t)
	w.Sync([]discoveryv1.EndpointSlice{wakeSlice("a", port)})
	c := dialWake(t, port)
	buf := make([]byte, 1)
	if _, err := c.Read(buf); !errors.Is(err, io.EOF) {
		t.Fatalf("read = %v, want EOF once the ready timeout passes", err)
	}
	eventually(t, "no connection held", func() bool { return w.Held() == 0 })
}

func TestWakeMapsPortsToTheirTCP(t *testing.T) {
	be := &fakeBackend{}
	w := newWakeServer(t, &fakeToucher{}, be.get)
	greet := func(name string) string {
		return serveTCP(t, func(c *net.TCPConn) { _, _ = c.Write([]byte(name)) })
	}
	be.set(tcpKey("a"), greet("a"))
	be.set(tcpKey("b"), greet("b"))
	pa, pb := freePort(t), freePort(t)
	reached := func(port int32) string {
		t.Helper()
		b, err := io.ReadAll(dialWake(t, port))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	w.Sync([]discoveryv1.EndpointSlice{wakeSlice("a", pa), wakeSlice("b", pb)})
	if a, b := reached(pa), reached(pb); a != "a" || b != "b" {
		t.Errorf("port of a reached %q, port of b reached %q", a, b)
	}
	// The controller re-assigned the ports: the open listeners follow.
	w.Sync([]discoveryv1.EndpointSlice{wakeSlice("a", pb), wakeSlice("b", pa)})
	if a, b := reached(pb), reached(pa); a != "a" || b != "b" {
		t.Errorf("after the swap, port of a reached %q, port of b reached %q", a, b)
	}
}

func TestWakeListenErrorRetriedOnNextSync(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := int32(busy.Addr().(*net.TCPAddr).Port)
	w := newWakeServer(t, &fakeToucher{}, (&fakeBackend{}).get)
	if w.sync([]discoveryv1.EndpointSlice{wakeSlice("a", port)}) {
		t.Fatal("sync reported success on a busy port")
	}
	busy.Close()
	if !w.sync([]discoveryv1.EndpointSlice{wakeSlice("a", port)}) {
		t.Fatal("sync did not open the freed port")
	}
	dialWake(t, port)
	eventually(t, "connection held", func() bool { return w.Held() == 1 })
}

func TestWakeIgnoresOtherSlices(t *testing.T) {
	w := &WakeServer{Log: logr.Discard()}
	two := wakeSlice("a", 20001)
	two.Ports = append(two.Ports, two.Ports[0])
	unlabelled := wakeSlice("b", 20002)
	delete(unlabelled.Labels, WakeLabel)
	dup := wakeSlice("c", 20003)
	first := wakeSlice("b", 20003) // b-wake sorts before c-wake: b keeps the port
	got := w.wantedPorts([]discoveryv1.EndpointSlice{two, unlabelled, dup, first, wakeSlice("d", 20004)})
	want := map[int32]types.NamespacedName{20003: tcpKey("b"), 20004: tcpKey("d")}
	if len(got) != len(want) || got[20003] != want[20003] || got[20004] != want[20004] {
		t.Errorf("wanted ports = %v, want %v", got, want)
	}
}

// fakeInformers gives Start an informer per object type whose handler the test drives; the rest
// of the interface is unused (nil embedded).
type fakeInformers struct {
	cache.Informers
	mu     sync.Mutex
	byType map[string]*fakeInformer
}

func (f *fakeInformers) of(obj client.Object) *fakeInformer {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byType == nil {
		f.byType = map[string]*fakeInformer{}
	}
	k := fmt.Sprintf("%T", obj)
	if f.byType[k] == nil {
		f.byType[k] = &fakeInformer{}
	}
	return f.byType[k]
}

func (f *fakeInformers) GetInformer(_ context.Context, obj client.Object, _ ...cache.InformerGetOption) (cache.Informer, error) {
	return f.of(obj), nil
}

type fakeInformer struct {
	cache.Informer
	mu      sync.Mutex
	handler toolscache.ResourceEventHandler
}

func (f *fakeInformer) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handler = h
	return nil, nil
}

func (f *fakeInformer) RemoveEventHandler(toolscache.ResourceEventHandlerRegistration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handler = nil
	return nil
}

func (f *fakeInformer) added(obj any) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.handler == nil {
		return false
	}
	f.handler.OnAdd(obj, false)
	return true
}

func (f *fakeInformer) updated(old, obj any) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.handler == nil {
		return false
	}
	f.handler.OnUpdate(old, obj)
	return true
}

func portOpen(port int32) bool {
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Start wires the informer to Sync: the initial list opens the existing slices' ports, an event
// opens a new one, and the end of ctx closes them all.
func TestWakeStart(t *testing.T) {
	pa, pb := freePort(t), freePort(t)
	sa, sb := wakeSlice("a", pa), wakeSlice("b", pb)
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(&sa).Build()
	infs := &fakeInformers{}
	inf := infs.of(&discoveryv1.EndpointSlice{})
	w := &WakeServer{
		Slices: c, Informers: infs, Toucher: &fakeToucher{},
		Backend: (&fakeBackend{}).get, ListenHost: "127.0.0.1", Log: logr.Discard(),
	}
	ctx, cancel := context.WithCancel(context.Background())
	var startErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		startErr = w.Start(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	// Not a connection to see the ports open: the server would hold it through its stop.
	eventually(t, "port of a open", func() bool { return w.listening(pa) })
	if err := c.Create(ctx, &sb); err != nil {
		t.Fatal(err)
	}
	eventually(t, "handler registered", func() bool { return inf.added(&sb) })
	eventually(t, "port of b open", func() bool { return w.listening(pb) })

	cancel()
	select {
	case <-done:
		if startErr != nil {
			t.Fatalf("Start: %v", startErr)
		}
	case <-time.After(testDeadline):
		t.Fatal("Start did not return after ctx ended")
	}
	if portOpen(pa) || portOpen(pb) {
		t.Error("a port is still open after Start returned")
	}
}

// A held connection's poller asks Backend again as soon as the TCP's Deployment changes, not
// at its next backoff (an hour here): the ready replica an apiserver pod brings ends the wait.
func TestWakeDeploymentEventAsksAgain(t *testing.T) {
	port := freePort(t)
	sa := wakeSlice("a", port)
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(&sa).Build()
	infs, be := &fakeInformers{}, &fakeBackend{}
	w := &WakeServer{
		Slices: c, Informers: infs, Toucher: &fakeToucher{},
		Backend: be.get, ListenHost: "127.0.0.1", Log: logr.Discard(),
		pollFirst: time.Hour, pollMax: time.Hour,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Start(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	eventually(t, "port of a open", func() bool { return w.listening(port) })
	held := dialWake(t, port)
	eventually(t, "the poller's first Backend call", func() bool { return be.callCount() == 1 })

	be.set(tcpKey("a"), serveTCP(t, echoThenBye))
	old := controlPlaneDeployment("a")
	dep := old.DeepCopy()
	dep.Status.ReadyReplicas = 1
	if !infs.of(&appsv1.Deployment{}).updated(old, dep) {
		t.Fatal("no Deployment event handler registered")
	}
	roundTrip(t, held, "woken by the Deployment")
	if n := be.callCount(); n != 2 {
		t.Errorf("Backend called %d times, want 2 (the first poll, then the Deployment event)", n)
	}
}

// listening tells whether w listens on port, without a connection (which it would hold).
func (w *WakeServer) listening(port int32) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.listeners[port]
	return ok
}

// drainClock stands in for the drain's timer: the test ends the time given to the connections
// left when it chooses.
type drainClock struct {
	began, finished chan time.Time
}

func newDrainClock() *drainClock {
	return &drainClock{began: make(chan time.Time, 1), finished: make(chan time.Time, 1)}
}

func (c *drainClock) after(time.Duration) <-chan time.Time {
	c.began <- time.Now()
	return c.finished
}

// startDraining runs w.Start until the test ends; cancel begins the stop, done closes when Start
// returned.
func startDraining(t *testing.T, w *WakeServer, slices ...client.Object) (cancel func(), done <-chan struct{}) {
	t.Helper()
	w.Slices = fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(slices...).Build()
	w.Informers, w.ListenHost, w.Log = &fakeInformers{}, "127.0.0.1", logr.Discard()
	ctx, stop := context.WithCancel(context.Background())
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		if err := w.Start(ctx); err != nil {
			t.Errorf("Start: %v", err)
		}
	}()
	t.Cleanup(func() {
		stop()
		w.stop() // ends a drain the test left under way
		<-ended
	})
	return stop, ended
}

// A connection held when the stop begins (the manager's shutdown delay is over) is relayed once
// the apiserver is ready, after the ports closed; then Start returns.
func TestWakeDrainRelaysWhatItHolds(t *testing.T) {
	port := freePort(t)
	sa := wakeSlice("a", port)
	be, clock := &fakeBackend{}, newDrainClock()
	w := &WakeServer{Toucher: &fakeToucher{}, Backend: be.get, after: clock.after}
	cancel, done := startDraining(t, w, &sa)
	eventually(t, "port of a open", func() bool { return w.listening(port) })
	held := dialWake(t, port)
	eventually(t, "a connection held", func() bool { return w.Held() == 1 })

	cancel()
	select {
	case <-clock.began:
	case <-done:
		t.Fatal("Start returned at once, with a connection held")
	case <-time.After(testDeadline):
		t.Fatal("no drain began")
	}
	if w.listening(port) || portOpen(port) {
		t.Fatal("the port still accepts connections once the stop began")
	}
	select {
	case <-done:
		t.Fatal("Start returned with a connection held")
	default:
	}
	be.set(tcpKey("a"), serveTCP(t, echoThenBye))
	roundTrip(t, held, "held when the stop began")
	select {
	case <-done:
	case <-time.After(testDeadline):
		t.Fatal("Start did not return once the connection ended")
	}
}

// A connection still held when the time given to it is up is closed, and Start returns; without
// a wake port open nothing drains.
func TestWakeDrainEnds(t *testing.T) {
	t.Run("a connection still held is closed", func(t *testing.T) {
		port := freePort(t)
		sa := wakeSlice("a", port)
		clock := newDrainClock()
		w := &WakeServer{Toucher: &fakeToucher{}, Backend: (&fakeBackend{}).get, after: clock.after}
		cancel, done := startDraining(t, w, &sa)
		eventually(t, "port of a open", func() bool { return w.listening(port) })
		held := dialWake(t, port)
		eventually(t, "a connection held", func() bool { return w.Held() == 1 })
		cancel()
		clock.finished <- time.Now()
		select {
		case <-done:
		case <-time.After(testDeadline):
			t.Fatal("Start did not return once the drain's time was up")
		}
		if _, err := held.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("read = %v, want EOF: the held connection closed", err)
		}
	})
	t.Run("no wake port, no drain", func(t *testing.T) {
		clock := newDrainClock()
		w := &WakeServer{Toucher: &fakeToucher{}, Backend: (&fakeBackend{}).get, after: clock.after}
		cancel, done := startDraining(t, w)
		cancel()
		select {
		case <-done:
		case <-time.After(testDeadline):
			t.Fatal("Start did not return at once with no port open")
		}
		if len(clock.began) != 0 {
			t.Error("a drain began with no port open")
		}
	})
}

func controlPlaneDeployment(tcp string) *appsv1.Deployment {
	yes := true
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: tcp, Namespace: "tenants", OwnerReferences: []metav1.OwnerReference{{
		APIVersion: kamajiv1alpha1.GroupVersion.String(), Kind: "TenantControlPlane", Name: tcp, UID: "u-" + types.UID(tcp), Controller: &yes,
	}}}}
}

// Only a Deployment a TCP controls names a TCP whose poller to wake.
func TestControllingTCP(t *testing.T) {
	notController := controlPlaneDeployment("a")
	notController.OwnerReferences[0].Controller = nil
	otherKind := controlPlaneDeployment("a")
	otherKind.OwnerReferences[0].Kind = "ReplicaSet"
	otherGroup := controlPlaneDeployment("a")
	otherGroup.OwnerReferences[0].APIVersion = "example.com/v1"
	for name, obj := range map[string]any{
		"no owner":                  &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "tenants"}},
		"owner not controller":      notController,
		"controller of other kind":  otherKind,
		"controller of other group": otherGroup,
		"not an object":             "a",
	} {
		if key, ok := controllingTCP(obj); ok {
			t.Errorf("%s: got %v, want none", name, key)
		}
	}
	if key, ok := controllingTCP(controlPlaneDeployment("b")); !ok || key != tcpKey("b") {
		t.Errorf("controlled by b: got %v, %v; want %v", key, ok, tcpKey("b"))
	}
}

func TestWakeStartNeedsInformers(t *testing.T) {
	w := &WakeServer{Slices: fake.NewClientBuilder().Build(), Toucher: &fakeToucher{}, Backend: (&fakeBackend{}).get}
	if err := w.Start(context.Background()); err == nil {
		t.Error("Start without Informers succeeded")
	}
}

// PodBackend's choice is pure logic over the listed pods: the fake client suffices.
func TestPodBackendPicksAReadyPod(t *testing.T) {
	ctx := context.Background()
	tcp := sleepyTCP("a", "10m")
	tcp.Spec.NetworkProfile.Port = 7443
	labels := map[string]string{"kamaji.clastix.io/name": "a", "app.kubernetes.io/managed-by": "kamaji"}
	pod := func(name, ip string, ready corev1.ConditionStatus, podLabels map[string]string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "tenants", Labels: podLabels},
			Status:     corev1.PodStatus{PodIP: ip, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}},
		}
	}
	deleting := pod("a-deleting", "10.0.0.1", corev1.ConditionTrue, labels)
	deleting.Finalizers = []string{"test/hold"}
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	objs := []client.Object{
		tcp, deleting,
		pod("a-unready", "10.0.0.2", corev1.ConditionFalse, labels),
		pod("a-noip", "", corev1.ConditionTrue, labels),
		pod("b-ready", "10.0.0.3", corev1.ConditionTrue, map[string]string{"kamaji.clastix.io/name": "b", "app.kubernetes.io/managed-by": "kamaji"}),
	}
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(objs...).Build()
	backend := PodBackend(c, c)
	if addr, err := backend(ctx, tcpKey("a")); err != nil || addr != "" {
		t.Fatalf("no ready pod: got %q, %v; want \"\"", addr, err)
	}
	if err := c.Create(ctx, pod("a-ready", "10.0.0.4", corev1.ConditionTrue, labels)); err != nil {
		t.Fatal(err)
	}
	if addr, err := backend(ctx, tcpKey("a")); err != nil || addr != "10.0.0.4:7443" {
		t.Fatalf("got %q, %v; want 10.0.0.4:7443", addr, err)
	}
	if _, err := backend(ctx, tcpKey("missing")); err == nil {
		t.Error("a missing TCP gave no error")
	}
}
