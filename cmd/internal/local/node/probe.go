package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// probe runs the container's startup probe, then its readiness and liveness probes, as the
// kubelet does: readiness and liveness wait for the startup probe; a startup or liveness
// failure past the threshold asks (on kill) for the container to be restarted.
func (r *podRunner) probe(ctx context.Context, c *ctr, podIP string, started time.Time, kill chan<- string) {
	spec := c.spec
	if spec.StartupProbe != nil {
		ok := r.probeLoop(ctx, c, "Startup", spec.StartupProbe, podIP, started, func(success bool) bool {
			return success // stop at the first success
		})
		if ctx.Err() != nil {
			return
		}
		if !ok {
			kill <- "failed startup probe"
			return
		}
	}
	r.mu.Lock()
	c.started = true
	if spec.ReadinessProbe == nil {
		c.ready = true
	}
	r.mu.Unlock()
	r.markDirty()

	if spec.ReadinessProbe != nil {
		go r.probeLoop(ctx, c, "Readiness", spec.ReadinessProbe, podIP, started, func(success bool) bool {
			r.mu.Lock()
			changed := c.ready != success
			c.ready = success
			r.mu.Unlock()
			if changed {
				r.markDirty()
			}
			return false // forever
		})
	}
	if spec.LivenessProbe != nil {
		ok := r.probeLoop(ctx, c, "Liveness", spec.LivenessProbe, podIP, started, func(bool) bool { return false })
		if !ok && ctx.Err() == nil {
			kill <- "failed liveness probe"
		}
	}
}

// probeLoop probes every period after the initial delay. onResult receives each verdict
// (after the success/failure thresholds) and returns true to stop; the loop returns false
// when the failure threshold is reached for a startup or liveness probe.
func (r *podRunner) probeLoop(ctx context.Context, c *ctr, kind string, p *corev1.Probe, podIP string, started time.Time, onResult func(bool) bool) bool {
	period := time.Duration(max(p.PeriodSeconds, 1)) * time.Second
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	success := max(p.SuccessThreshold, 1)
	failure := max(p.FailureThreshold, 1)
	first := time.Until(started.Add(time.Duration(p.InitialDelaySeconds) * time.Second))
	if first > 0 {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(first):
		}
	}
	var okRun, failRun int32
	seen := false // a success seen: from then on, only the period's probes
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		ok, msg := runProbe(ctx, p, &c.spec, podIP, timeout)
		if ctx.Err() != nil {
			return false
		}
		if ok {
			seen = true
			okRun, failRun = okRun+1, 0
			if okRun >= success && onResult(true) {
				return true
			}
		} else {
			okRun, failRun = 0, failRun+1
			if failRun == failure || (failRun > failure && kind == "Readiness") {
				if kind != "Readiness" {
					r.event(corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %s", kind, msg)
					return false
				}
				if failRun == failure {
					r.event(corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %s", kind, msg)
				}
				if onResult(false) {
					return false
				}
			}
		}
		if !seen && kind != "Liveness" && success == 1 {
			// Until the first success, the node also probes between the period's ticks, and
			// acts on a success at once; those extra probes never count as failures, so the
			// failure budget (threshold x period) is the kubelet's. A kubelet notices a
			// container is up to one period late; here, a starting apiserver is Ready within
			// earlyProbeInterval of answering.
			succeeded, stop := r.probeEarly(ctx, c, p, podIP, timeout, t.C, onResult)
			if stop {
				return true
			}
			if succeeded {
				seen, okRun = true, 1
			}
			continue // at the tick: the period's probe
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// earlyProbeInterval is how often a not-yet-successful startup or readiness probe is repeated
// between its period's ticks.
const earlyProbeInterval = 100 * time.Millisecond

// probeEarly probes every earlyProbeInterval until the next tick, and returns at that tick or
// when ctx ends. On a success it calls onResult(true): stop is what that answered (the
// startup probe stops; readiness goes on, from the next tick).
func (r *podRunner) probeEarly(ctx context.Context, c *ctr, p *corev1.Probe, podIP string, timeout time.Duration, tick <-chan time.Time, onResult func(bool) bool) (succeeded, stop bool) {
	early := time.NewTicker(earlyProbeInterval)
	defer early.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, false
		case <-tick:
			return false, false
		case <-early.C:
			if ok, _ := runProbe(ctx, p, &c.spec, podIP, timeout); ok && ctx.Err() == nil {
				if onResult(true) {
					return true, true
				}
				// Wait for the tick, so the period's cadence resumes.
				select {
				case <-ctx.Done():
				case <-tick:
				}
				return true, false
			}
		}
	}
}

// runProbe performs one probe from the host, against the pod's address.
func runProbe(ctx context.Context, p *corev1.Probe, c *corev1.Container, podIP string, timeout time.Duration) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.HTTPGet != nil:
		g := p.HTTPGet
		port, err := resolvePort(g.Port, c)
		if err != nil {
			return false, err.Error()
		}
		host := g.Host
		if host == "" {
			host = podIP
		}
		scheme := strings.ToLower(string(g.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		path := g.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		url := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + path
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err.Error()
		}
		req.Header.Set("User-Agent", "kube-probe/local")
		for _, h := range g.HTTPHeaders {
			req.Header.Set(h.Name, h.Value)
		}
		resp, err := probeClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		if resp.StatusCode >= 200 && resp.StatusCode < 400 {
			return true, ""
		}
		return false, fmt.Sprintf("HTTP probe failed with statuscode: %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	case p.TCPSocket != nil:
		port, err := resolvePort(p.TCPSocket.Port, c)
		if err != nil {
			return false, err.Error()
		}
		host := p.TCPSocket.Host
		if host == "" {
			host = podIP
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	case p.Exec != nil:
		return false, "exec probes are not supported on the local node"
	case p.GRPC != nil:
		return false, "gRPC probes are not supported on the local node"
	}
	return false, "probe has no handler"
}

var probeClient = &http.Client{
	Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as the kubelet's prober
		DisableKeepAlives: true,
	},
}

func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("no port named %q in container %s", p.StrVal, c.Name)
}
