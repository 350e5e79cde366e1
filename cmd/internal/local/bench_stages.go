package local

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/openhcp/kamaji/core/sleep"
)

// benchStages are the milestones between applying a TCP (or waking one) and its /readyz
// answering through the Service, in the order they happen; the bench prints the p50 of each
// (time since the apply, or since the request that wakes it), so a slow step shows where it is.
// apiserver-ready is the tenant apiserver's own /readyz answering at the pod's address: what
// follows it (the node's probe, the pod's status, the EndpointSlice, kube-proxy's rules) is
// the way to the Service, not the apiserver's start.
var benchStages = []string{"deployment", "pod", "scheduled", "containers-running", "apiserver-ready", "pod-ready", "endpoint-ready"}

// printStages prints the p50 of each milestone seen, in benchStages' order, as "metric
// <prefix><stage>.p50".
func printStages(out io.Writer, prefix string, stages map[string][]time.Duration) {
	for _, st := range benchStages {
		if ds := stages[st]; len(ds) > 0 {
			fmt.Fprintf(out, "metric %s%s.p50 %.3f s\n", prefix, st, percentile(ds, 50).Seconds())
		}
	}
}

// addStages appends one run's milestones (a stageClock snapshot) to stages.
func addStages(stages map[string][]time.Duration, at map[string]time.Duration) {
	for k, v := range at {
		stages[k] = append(stages[k], v)
	}
}

// stageClock records when each milestone of one TCP is first seen, from watches (no polling:
// the measurement must not load the apiserver it measures).
type stageClock struct {
	start time.Time
	mu    sync.Mutex
	at    map[string]time.Duration
}

func (c *stageClock) mark(stage string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.at[stage]; !ok {
		c.at[stage] = time.Since(c.start)
	}
}

func (c *stageClock) snapshot() map[string]time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]time.Duration, len(c.at))
	for k, v := range c.at {
		out[k] = v
	}
	return out
}

// watchStages starts the watches for TCP name; they stop with ctx.
func (p *Plane) watchStages(ctx context.Context, name string, start time.Time) (*stageClock, error) {
	c := &stageClock{start: start, at: map[string]time.Duration{}}
	ns := "default"
	deps, err := p.cs.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		return nil, err
	}
	pods, err := p.cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "kamaji.clastix.io/name=" + name})
	if err != nil {
		deps.Stop()
		return nil, err
	}
	eps, err := p.cs.DiscoveryV1().EndpointSlices(ns).Watch(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		deps.Stop()
		pods.Stop()
		return nil, err
	}
	consume := func(w watch.Interface, on func(obj any)) {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				if ev.Type == watch.Added || ev.Type == watch.Modified {
					on(ev.Object)
				}
			}
		}
	}
	go consume(deps, func(obj any) {
		// A sleeping TCP's Deployment exists at 0 replicas: for a wake, the milestone is its scale-up.
		if d, ok := obj.(*appsv1.Deployment); ok && (d.Spec.Replicas == nil || *d.Spec.Replicas > 0) {
			c.mark("deployment")
		}
	})
	var probing sync.Once
	go consume(pods, func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		c.mark("pod")
		if pod.Status.PodIP != "" {
			probing.Do(func() { go c.probeAPIServer(ctx, pod) })
		}
		if pod.Spec.NodeName != "" {
			c.mark("scheduled")
		}
		running := len(pod.Status.ContainerStatuses) > 0
		for _, cs := range pod.Status.ContainerStatuses {
			running = running && cs.State.Running != nil
		}
		if running {
			c.mark("containers-running")
		}
		for _, cond := range pod.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				c.mark("pod-ready")
			}
		}
	})
	go consume(eps, func(obj any) {
		s, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok || s.Labels[sleep.WakeLabel] != "" { // the wake slice leads to the manager
			return
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
				c.mark("endpoint-ready")
			}
		}
	})
	return c, nil
}

// probeAPIServerEvery is how often the bench asks the tenant apiserver's /readyz at the pod's
// address until it answers: a cheap request to the apiserver measured, none to the plane's.
const probeAPIServerEvery = 25 * time.Millisecond

// probeAPIServer marks apiserver-ready when the pod's kube-apiserver first answers /readyz. Its
// connection is kept between requests: a TLS handshake every 25 ms would cost the apiserver
// being measured CPU (ten starting at once share 2 cores).
func (c *stageClock) probeAPIServer(ctx context.Context, pod *corev1.Pod) {
	url := "https://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(APIServerPort(pod))) + "/readyz"
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // timing only
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	t := time.NewTicker(probeAPIServerEvery)
	defer t.Stop()
	for {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		req, _ := http.NewRequestWithContext(actx, http.MethodGet, url, nil)
		resp, err := cl.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body) // read to the end, so the connection is reused
			resp.Body.Close()
		}
		cancel()
		if err == nil && resp.StatusCode == http.StatusOK {
			c.mark("apiserver-ready")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// APIServerPort is the port kube-apiserver listens on in a tenant's pod (6443 unless the TCP
// says otherwise).
func APIServerPort(pod *corev1.Pod) int {
	for _, c := range pod.Spec.Containers {
		if c.Name == "kube-apiserver" && len(c.Ports) > 0 {
			return int(c.Ports[0].ContainerPort)
		}
	}
	return 6443
}
