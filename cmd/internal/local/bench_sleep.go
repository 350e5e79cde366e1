package local

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/kubeconfig"
	"github.com/openhcp/kamaji/core/sleep"
)

// BenchSleep is benchSleep on a running plane.
func BenchSleep(ctx context.Context, cfg Config, rounds int) error {
	p, err := runningPlane(cfg)
	if err != nil {
		return err
	}
	return p.benchSleep(ctx, cfg.Out, rounds)
}

// benchSleep measures automatic sleep (docs/sleep.md): what it costs an awake tenant's requests
// (its apiserver sends audit events; nothing of the manager is in the path), and how long a
// request to a sleeping tenant takes to be answered, the wake included, over rounds.
func (p *Plane) benchSleep(ctx context.Context, out io.Writer, rounds int) error {
	const plain, sleepy = "bench-awake", "bench-sleepy"
	for _, name := range []string{plain, sleepy} {
		tcp := SampleTCP(name, "default")
		if name == sleepy {
			tcp.Annotations = map[string]string{kamajiv1alpha1.SleepAfterAnnotation: sleep.MinSleepAfter.String()}
		}
		if err := p.cl.Create(ctx, tcp); err != nil {
			return err
		}
	}
	defer func() {
		for _, name := range []string{plain, sleepy} {
			_ = p.deleteTCPNamed(context.WithoutCancel(ctx), name)
		}
	}()
	if err := p.waitSleepReason(ctx, sleepy, sleep.ReasonAwake); err != nil {
		return err
	}
	clients := map[string]*http.Client{}
	hosts := map[string]string{}
	for _, name := range []string{plain, sleepy} {
		if err := p.WaitTCPReady(ctx, "default", name, 3*time.Minute); err != nil {
			return err
		}
		rc, err := p.tenantRESTConfig(ctx, name)
		if err != nil {
			return err
		}
		if clients[name], err = rest.HTTPClientFor(rc); err != nil {
			return err
		}
		hosts[name] = rc.Host
	}
	// Interleaved, on kept-alive connections as kubectl and controllers use them.
	lat := map[string][]time.Duration{}
	for i := range 320 {
		for _, name := range []string{plain, sleepy} {
			start := time.Now()
			if err := getOK(ctx, clients[name], hosts[name]+"/api/v1/namespaces?limit=1"); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if i >= 20 { // warm-up
				lat[name] = append(lat[name], time.Since(start))
			}
		}
	}
	a, b := percentile(lat[plain], 50), percentile(lat[sleepy], 50)
	fmt.Fprintf(out, "metric sleep.awake.request.p50 %.3f ms\nmetric sleep.awake.audited.request.p50 %.3f ms\nmetric sleep.awake.overhead.p50 %.3f ms\n",
		ms(a), ms(b), ms(b-a))

	rc, err := p.tenantRESTConfig(ctx, sleepy)
	if err != nil {
		return err
	}
	tlsCfg, err := rest.TLSConfigFor(rc)
	if err != nil {
		return err
	}
	// A new connection, as a client coming back after a while opens one.
	fresh := &http.Client{Timeout: 3 * time.Minute, Transport: &http.Transport{TLSClientConfig: tlsCfg, DisableKeepAlives: true}}
	var wakes, asleepAfter []time.Duration
	stages := map[string][]time.Duration{}
	var afterReady []time.Duration
	for range rounds {
		idleFrom := time.Now()
		if err := p.waitSleepReason(ctx, sleepy, sleep.ReasonIdle); err != nil {
			return err
		}
		if err := p.waitTCPStatus(ctx, sleepy, kamajiv1alpha1.VersionSleeping); err != nil {
			return err
		}
		// Sleeping is said once the replicas are 0; a terminating apiserver still answers
		// meanwhile, and a request then would measure no wake at all.
		if err := p.waitNoPods(ctx, sleepy); err != nil {
			return err
		}
		asleepAfter = append(asleepAfter, time.Since(idleFrom))
		start := time.Now()
		wctx, stop := context.WithCancel(ctx)
		clock, err := p.watchStages(wctx, sleepy, start)
		if err != nil {
			stop()
			return err
		}
		err = getOK(ctx, fresh, rc.Host+"/api/v1/namespaces?limit=1")
		wake := time.Since(start)
		wakes = append(wakes, wake)
		stop()
		if err != nil {
			return fmt.Errorf("the request that wakes %s: %w", sleepy, err)
		}
		at := clock.snapshot()
		addStages(stages, at)
		if ready, ok := at["pod-ready"]; ok {
			// What the wake server adds: from the pod's readiness to the held request's answer.
			afterReady = append(afterReady, wake-ready)
		}
		if err := p.waitSleepReason(ctx, sleepy, sleep.ReasonAwake); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "metric sleep.wake.p50 %.3f s\nmetric sleep.wake.p95 %.3f s\nmetric sleep.asleep-after.p50 %.1f s\n",
		percentile(wakes, 50).Seconds(), percentile(wakes, 95).Seconds(), percentile(asleepAfter, 50).Seconds())
	printStages(out, "sleep.wake.stage.", stages)
	if len(afterReady) > 0 {
		fmt.Fprintf(out, "metric sleep.wake.after-pod-ready.p50 %.3f s\n", percentile(afterReady, 50).Seconds())
	}
	fmt.Fprintf(out, "sleep: 300 GETs per tenant, with and without %s; %d wakes of a tenant idle for %s, each by a GET on a new connection; aims: overhead < 1 ms, wake p50 < 5 s\n",
		kamajiv1alpha1.SleepAfterAnnotation, rounds, sleep.MinSleepAfter)
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// tenantRESTConfig is the tenant's super-admin configuration, through its Service, without
// client-side rate limiting.
func (p *Plane) tenantRESTConfig(ctx context.Context, name string) (*rest.Config, error) {
	return p.tenantRESTConfigIn(ctx, "default", name)
}

// tenantRESTConfigIn is tenantRESTConfig for a tenant of any namespace.
func (p *Plane) tenantRESTConfigIn(ctx context.Context, namespace, name string) (*rest.Config, error) {
	s, err := p.cs.CoreV1().Secrets(namespace).Get(ctx, kubeconfig.AdminSecretName(name), metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	rc, err := clientcmd.RESTConfigFromKubeConfig(s.Data["super-admin.conf"])
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = -1, 0
	return rc, nil
}

func getOK(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// waitSleepReason waits until the TCP's Sleeping condition has reason.
func (p *Plane) waitSleepReason(ctx context.Context, name, reason string) error {
	return pollReady(ctx, 4*time.Minute, nil, func(ctx context.Context) error {
		tcp := &kamajiv1alpha1.TenantControlPlane{}
		if err := p.cl.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, tcp); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(tcp.Status.Conditions, kamajiv1alpha1.ConditionSleeping); c != nil && c.Reason == reason {
			return nil
		}
		return fmt.Errorf("%s: the Sleeping condition is not %s yet", name, reason)
	})
}

// waitTCPStatus waits until the TCP's version status is want.
func (p *Plane) waitTCPStatus(ctx context.Context, name string, want kamajiv1alpha1.KubernetesVersionStatus) error {
	return pollReady(ctx, 4*time.Minute, nil, func(ctx context.Context) error {
		tcp := &kamajiv1alpha1.TenantControlPlane{}
		if err := p.cl.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, tcp); err != nil {
			return err
		}
		if s := tcp.Status.Kubernetes.Version.Status; s != nil && *s == want {
			return nil
		}
		return fmt.Errorf("%s is not %s yet", name, want)
	})
}

// waitNoPods waits until the tenant has no pod left, terminating ones included.
func (p *Plane) waitNoPods(ctx context.Context, name string) error {
	return pollReady(ctx, 2*time.Minute, nil, func(ctx context.Context) error {
		pods, err := p.cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "kamaji.clastix.io/name=" + name})
		if err != nil {
			return err
		}
		if n := len(pods.Items); n > 0 {
			return fmt.Errorf("%s still has %d pods", name, n)
		}
		return nil
	})
}
