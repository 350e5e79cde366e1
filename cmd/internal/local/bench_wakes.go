package local

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/sleep"
)

// BenchWakes is benchWakes on a running plane.
func BenchWakes(ctx context.Context, cfg Config, n int) error {
	p, err := runningPlane(cfg)
	if err != nil {
		return err
	}
	return p.benchWakes(ctx, cfg.Out, n)
}

// benchWakes measures n sleeping tenants woken at once, as on a Monday morning: n sleepy TCPs
// are applied, left to fall asleep, then each is sent a GET on a new connection at the same
// moment; it prints the p50 and p95 of the times to their answers, and deletes them. The wakes
// take the plane's start slots (max-starting-control-planes) before any other start.
func (p *Plane) benchWakes(ctx context.Context, out io.Writer, n int) error {
	const prefix = "bench-wake-"
	defer func() { _ = p.deleteTCPs(context.WithoutCancel(ctx), prefix, n) }()
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("%s%02d", prefix, i)
		tcp := SampleTCP(names[i], "default")
		if tcp.Annotations == nil {
			tcp.Annotations = map[string]string{}
		}
		tcp.Annotations[kamajiv1alpha1.SleepAfterAnnotation] = sleep.MinSleepAfter.String()
		if err := p.cl.Create(ctx, tcp); err != nil {
			return err
		}
	}
	hosts := make([]string, n)
	tlsCfgs := make([]*tls.Config, n)
	if err := eachTenant(n, func(i int) error {
		if err := p.WaitTCPReady(ctx, "default", names[i], 5*time.Minute); err != nil {
			return err
		}
		rc, err := p.tenantRESTConfig(ctx, names[i])
		if err != nil {
			return err
		}
		hosts[i] = rc.Host
		tlsCfgs[i], err = rest.TLSConfigFor(rc)
		return err
	}); err != nil {
		return err
	}
	// All asleep, no pod left: a request to a terminating apiserver would measure no wake.
	if err := eachTenant(n, func(i int) error {
		if err := p.waitTCPStatus(ctx, names[i], kamajiv1alpha1.VersionSleeping); err != nil {
			return err
		}
		return p.waitNoPods(ctx, names[i])
	}); err != nil {
		return err
	}
	wakes := make([]time.Duration, n)
	start := time.Now()
	if err := eachTenant(n, func(i int) error {
		fresh := &http.Client{Timeout: 3 * time.Minute, Transport: &http.Transport{TLSClientConfig: tlsCfgs[i], DisableKeepAlives: true}}
		err := getOK(ctx, fresh, hosts[i]+"/api/v1/namespaces?limit=1")
		wakes[i] = time.Since(start)
		if err != nil {
			return fmt.Errorf("the request that wakes %s: %w", names[i], err)
		}
		return nil
	}); err != nil {
		return err
	}
	fmt.Fprintf(out, "metric sleep.wake.parallel.p50 %.3f s\nmetric sleep.wake.parallel.p95 %.3f s\n",
		percentile(wakes, 50).Seconds(), percentile(wakes, 95).Seconds())
	fmt.Fprintf(out, "sleep: %d sleeping tenants woken at once, each by a GET on a new connection; the manager's max-starting-control-planes: %s\n",
		n, p.startLimitInForce(ctx))
	return nil
}

// startLimitInForce reads max-starting-control-planes from the manager's configuration (the
// chart's ConfigMap, which helm upgrade may have changed since the plane started).
func (p *Plane) startLimitInForce(ctx context.Context) string {
	cm, err := p.cs.CoreV1().ConfigMaps(ManagerNamespace).Get(ctx, ManagerRelease+"-config", metav1.GetOptions{})
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	var conf struct {
		Limit int `json:"max-starting-control-planes"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["kamaji.yaml"]), &conf); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	if conf.Limit == 0 {
		return "0 (no limit)"
	}
	return strconv.Itoa(conf.Limit)
}

// eachTenant runs f for 0..n-1 side by side and joins their errors.
func eachTenant(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
