package local_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/manager"
	"github.com/openhcp/kamaji/core/testenv"

	"github.com/openhcp/kamaji/cmd/internal/local"
)

// previousKubeVersion is the older tenant version hack/kube-bins.sh builds (PREVIOUS there).
const previousKubeVersion = "v1.36.3"

func init() {
	registerPlaneSubtest("upgrade from the previous version without a failed request", testUpgrade)
}

// testUpgrade creates a TCP at the previous minor, then upgrades it to the plane's version while
// two clients poll the tenant through its Service every 100 ms: one opening a connection per
// request and never retrying (each request routed afresh by kube-proxy), one a client-go
// clientset. No request may fail, and the version they see must go from the old to the new
// one. The TCP must report Upgrading, then Ready with the new version.
//
// The Deployment rolls blue/green: the new pod gets Ready, then the old one is deleted. The
// process node takes the old pod out of the Services before it signals it (node/unroute.go);
// without that, kube-proxy kept sending new connections to the stopped apiserver for up to a
// second, and they were refused.
func testUpgrade(t *testing.T, e *e2e) {
	const name = "e2e-upgrade"
	from, to := previousKubeVersion, local.KubeVersion
	ensurePreviousBins(t, from)

	start := time.Now()
	step := func(what string) { t.Logf("%5.1fs %s", time.Since(start).Seconds(), what) }
	tcp := local.SampleTCP(name, "default")
	tcp.Spec.Kubernetes.Version = from
	if err := e.cl.Create(ctx(t), tcp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.deleteTCP(t, name) })
	e.waitStatus(t, name, kamajiv1alpha1.VersionReady)
	if got := e.tcp(t, name).Status.Kubernetes.Version.Version; got != from {
		t.Fatalf("status version %q, want %q", got, from)
	}
	step(name + " Ready on " + from)

	cfg := e.tenantREST(t, name)
	goPoller, retryAfter := startClientGoPoller(t, cfg)
	pollers := []*poller{startRawPoller(cfg), goPoller}
	defer func() {
		for _, p := range pollers {
			p.halt()
		}
	}()
	for _, p := range pollers {
		eventually(t, p.String()+" to see "+from, func() error { return p.sawLast(from) })
	}

	oldPods := e.tenantPods(t, name)
	if len(oldPods) != 1 || oldPods[0].Status.PodIP == "" {
		t.Fatalf("pods before the upgrade: %v", podSummary(oldPods))
	}
	oldPod := oldPods[0]
	oldAddr := net.JoinHostPort(oldPod.Status.PodIP, strconv.Itoa(local.APIServerPort(&oldPod)))

	// Every status the TCP goes through, from a watch opened before the change.
	statuses := e.watchStatuses(t, name)
	cur := e.tcp(t, name)
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Spec.Kubernetes.Version = to
	if err := e.cl.Patch(ctx(t), cur, patch); err != nil {
		t.Fatal(err)
	}
	step("version set to " + to)
	seen := statuses.until(t, func(s tcpStatus) bool {
		return s.state == kamajiv1alpha1.VersionReady && s.version == to && s.generation == cur.Generation
	})
	if !containsState(seen, kamajiv1alpha1.VersionUpgrading) {
		t.Errorf("the TCP did not report Upgrading on its way to Ready: %v", seen)
	}
	step(fmt.Sprintf("Ready on %s, through %v", to, seen))
	eventually(t, "the new pod Ready on "+to, func() error {
		for _, pod := range e.tenantPods(t, name) {
			if pod.UID == oldPod.UID || pod.DeletionTimestamp != nil {
				continue
			}
			for _, c := range pod.Spec.Containers {
				if !strings.HasSuffix(c.Image, ":"+to) {
					return fmt.Errorf("container %s runs %s", c.Name, c.Image)
				}
			}
			if !podReady(&pod) {
				return fmt.Errorf("pods %v", podSummary([]corev1.Pod{pod}))
			}
			return nil
		}
		return fmt.Errorf("no new pod")
	})
	// The moment that matters: the old apiserver stops listening. (Its process then waits for
	// the watches it serves to end, up to the grace period: the test does not wait for that.)
	eventually(t, "the old apiserver to stop listening at "+oldAddr, func() error {
		c, err := net.DialTimeout("tcp", oldAddr, time.Second)
		if err != nil {
			return nil // refused, or the sandbox is gone already
		}
		c.Close()
		return fmt.Errorf("%s accepts connections", oldAddr)
	})
	step("the old apiserver stopped listening")
	for _, p := range pollers {
		n := p.answered() // and a few answers more, from the new pod alone
		eventually(t, p.String()+" to answer 10 more requests", func() error {
			if p.answered() < n+10 {
				return fmt.Errorf("%d answers", p.answered()-n)
			}
			return nil
		})
	}
	for _, p := range pollers {
		eventually(t, p.String()+" to see "+to, func() error { return p.sawLast(to) })
		p.halt()
		ok, failures, versions := p.result()
		t.Logf("%s: %d requests answered, versions seen in turn %v", p, ok, versions)
		if len(failures) > 0 {
			t.Errorf("%s: %d of %d requests failed during the upgrade:\n  %s", p, len(failures), ok+len(failures), strings.Join(failures, "\n  "))
		}
		if len(versions) == 0 || versions[0] != from || versions[len(versions)-1] != to {
			t.Errorf("%s: versions seen %v, want from %s to %s", p, versions, from, to)
		}
	}
	if n := retryAfter.Load(); n > 0 {
		t.Logf("the client-go client was answered 503 with Retry-After %d time(s) by the old apiserver shutting down, and retried as asked", n)
	}
}

// ensurePreviousBins builds the previous version's control plane into the cache when missing
// (`make kube-bins` did it already under `make test` and `make up`).
func ensurePreviousBins(t *testing.T, version string) {
	t.Helper()
	names := []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"}
	cache := local.DefaultConfig().Cache
	var args []string
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(cache, "kube", version, "bin", n)); err != nil {
			args = append(args, n+"@"+version)
		}
	}
	if len(args) == 0 {
		return
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("building %v (minutes, once)", args)
	cmd := exec.Command(filepath.Join(root, "hack", "kube-bins.sh"), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/kube-bins.sh %v: %v\n%s", args, err, out)
	}
}

// tenantREST is the tenant's super-admin config from its Secret, aimed at its Service.
func (e *e2e) tenantREST(t *testing.T, name string) *rest.Config {
	t.Helper()
	s, err := e.cs.CoreV1().Secrets("default").Get(ctx(t), kubeconfig.AdminSecretName(name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(s.Data["super-admin.conf"])
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host = "https://" + e.tcp(t, name).Status.ControlPlaneEndpoint
	return cfg
}

func (e *e2e) deleteTCP(t *testing.T, name string) {
	tcp := &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
	if err := e.cl.Delete(context.Background(), tcp); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting %s: %v", name, err)
		return
	}
	// Its pods go with their grace periods (an old apiserver serving watches uses all of its
	// own): `down` stops what is left.
	eventually(t, name+" to be gone", func() error {
		err := e.cl.Get(ctx(t), client.ObjectKeyFromObject(tcp), &kamajiv1alpha1.TenantControlPlane{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("TCP still there: %v", err)
		}
		return nil
	})
}

// poller asks a tenant apiserver for its version and for a namespace list, in turn, every
// 100 ms, and records every failure and the versions answered.
type poller struct {
	name string
	get  func(i int) (version string, err error) // version "" for the list
	stop chan struct{}
	done chan struct{}
	once sync.Once

	mu       sync.Mutex
	ok       int
	failures []string
	versions []string // each change of the version answered
}

// startRawPoller opens a new connection for each request and never retries: every request is
// routed afresh by kube-proxy, and any refused connection or error answer is a failure.
func startRawPoller(cfg *rest.Config) *poller {
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		panic(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg, DisableKeepAlives: true}}
	return startPoller("the connection-per-request client", func(i int) (string, error) {
		if i%2 == 0 {
			return getGitVersion(hc, cfg.Host)
		}
		return "", getOK(hc, cfg.Host+"/api/v1/namespaces?limit=1")
	})
}

// startClientGoPoller is a client-go clientset, as kubectl and controllers talk to an
// apiserver: one HTTP/2 connection kept alive. It sticks to the old apiserver until that one
// closes it; a request that reaches it after its shutdown began is answered 503 with
// Retry-After, which client-go honours as the apiserver asks. Those answers are counted and
// logged: they are the apiserver's graceful termination, not failures.
func startClientGoPoller(t *testing.T, cfg *rest.Config) (*poller, *atomic.Int32) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst, cfg.Timeout = 100, 100, 10*time.Second
	retryAfter := &atomic.Int32{}
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			if err == nil && resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
				retryAfter.Add(1)
			}
			return resp, err
		})
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return startPoller("the client-go client", func(i int) (string, error) {
		if i%2 == 0 {
			v, err := cs.Discovery().ServerVersion()
			if err != nil {
				return "", err
			}
			return v.GitVersion, nil
		}
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := cs.CoreV1().Namespaces().List(c, metav1.ListOptions{Limit: 1})
		return "", err
	}), retryAfter
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func startPoller(name string, get func(int) (string, error)) *poller {
	p := &poller{name: name, get: get, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			start := time.Now()
			v, err := p.get(i)
			p.mu.Lock()
			if err != nil {
				p.failures = append(p.failures, fmt.Sprintf("%s (%.0f ms): %v", start.Format("15:04:05.000"), time.Since(start).Seconds()*1000, err))
			} else {
				p.ok++
				if n := len(p.versions); v != "" && (n == 0 || p.versions[n-1] != v) {
					p.versions = append(p.versions, v)
				}
			}
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *poller) String() string { return p.name }

func (p *poller) halt() {
	p.once.Do(func() { close(p.stop) })
	<-p.done
}

// sawLast answers nil once the last version answered was v.
func (p *poller) sawLast(v string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.versions); n > 0 && p.versions[n-1] == v {
		return nil
	}
	return fmt.Errorf("versions %v, %d failures", p.versions, len(p.failures))
}

func (p *poller) answered() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ok
}

func (p *poller) result() (int, []string, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ok, append([]string(nil), p.failures...), append([]string(nil), p.versions...)
}

func getGitVersion(hc *http.Client, host string) (string, error) {
	resp, err := hc.Get(host + "/version")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /version: %d %s", resp.StatusCode, body)
	}
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fmt.Errorf("GET /version: %v", err)
	}
	return v.GitVersion, nil
}

func getOK(hc *http.Client, url string) error {
	resp, err := hc.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return nil
}

// tcpStatus is one state a TCP was seen in.
type tcpStatus struct {
	generation, observed int64
	state                kamajiv1alpha1.KubernetesVersionStatus
	version              string
}

func (s tcpStatus) String() string {
	return fmt.Sprintf("%s/%s (generation %d, observed %d)", s.state, s.version, s.generation, s.observed)
}

func containsState(seen []tcpStatus, want kamajiv1alpha1.KubernetesVersionStatus) bool {
	for _, s := range seen {
		if s.state == want {
			return true
		}
	}
	return false
}

type statusWatch struct {
	w watch.Interface
}

// watchStatuses opens a watch on the TCP: every write of it is seen, however short-lived.
func (e *e2e) watchStatuses(t *testing.T, name string) *statusWatch {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(e.state, "admin.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	wc, err := client.NewWithWatch(rc, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(context.Background(), &kamajiv1alpha1.TenantControlPlaneList{},
		client.InNamespace("default"), client.MatchingFields{"metadata.name": name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return &statusWatch{w: w}
}

// until collects the distinct states until done answers true (2 minutes at most).
func (sw *statusWatch) until(t *testing.T, done func(tcpStatus) bool) []tcpStatus {
	t.Helper()
	var seen []tcpStatus
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case ev, ok := <-sw.w.ResultChan():
			if !ok {
				t.Fatalf("the watch ended; states seen %v", seen)
			}
			tcp, isTCP := ev.Object.(*kamajiv1alpha1.TenantControlPlane)
			if !isTCP {
				t.Fatalf("watch event %s: %v", ev.Type, ev.Object)
			}
			s := tcpStatus{generation: tcp.Generation, observed: tcp.Status.ObservedGeneration, version: tcp.Status.Kubernetes.Version.Version}
			if tcp.Status.Kubernetes.Version.Status != nil {
				s.state = *tcp.Status.Kubernetes.Version.Status
			}
			if n := len(seen); n == 0 || seen[n-1] != s {
				seen = append(seen, s)
			}
			if done(s) {
				return seen
			}
		case <-deadline:
			t.Fatalf("timed out; states seen %v", seen)
		}
	}
}
