package main

import (
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openhcp/kamaji/core/tenantpki"
)

// managerKill: -tcps TCPs created at once, the manager SIGKILLed (its plugins die with it) once
// a third of them have a Deployment, started again 5 s later. Every TCP's CA Secret is watched
// from its first appearance (polled every 200 ms): its uid and ca.crt must never change, i.e.
// each CA is generated once. Figures: TCPs provisioned at the kill, seconds from the restart
// until every TCP converged, CAs replaced, and the etcd audit. Aim: every TCP converges, 0 CAs
// replaced, 0 leaked users and duplicate slices.
func managerKill(h *harness, o options) error {
	const prefix = "mk"
	all := names(prefix, o.tcps)
	w := &caWatch{first: map[string]string{}, replaced: map[string]bool{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			_ = w.observe(h, prefix)
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	start := time.Now()
	if err := h.createTCPs(prefix, o.tcps); err != nil {
		return err
	}
	threshold := max(1, o.tcps/3)
	var atKill int
	if err := retry(h.ctx, 10*time.Minute, func() error {
		s, err := h.snapshot(prefix)
		if err != nil {
			return err
		}
		if atKill = len(s.deps); atKill < threshold {
			return fmt.Errorf("%d of %d Deployments", atKill, threshold)
		}
		return nil
	}); err != nil {
		return err
	}
	casAtKill := w.count()
	logf("manager-kill: %d Deployments, %d CAs after %.1f s: SIGKILL to the manager", atKill, casAtKill, time.Since(start).Seconds())
	h.killManager()
	time.Sleep(5 * time.Second) // the manager stays down for a while, as a crashed pod would
	if err := h.startManager(); err != nil {
		return err
	}
	restarted := time.Now()
	if _, err := h.waitConverged(prefix, all, "", 10*time.Minute); err != nil {
		return err
	}
	recovery := time.Since(restarted)
	close(stop)
	wg.Wait()
	_ = w.observe(h, prefix)
	a, err := h.auditNow(prefix)
	if err != nil {
		return err
	}
	replaced := w.replacedNames()

	metric("tcps", float64(len(all)), "count")
	metric("deployments.at-kill", float64(atKill), "count")
	metric("cas.at-kill", float64(casAtKill), "count")
	metric("recovery.seconds", recovery.Seconds(), "s")
	metric("cas", float64(w.count()), "count")
	metric("cas.replaced", float64(len(replaced)), "count")
	metric("leaked.users", float64(len(a.LeakedUsers)), "count")
	metric("duplicate.slices", float64(a.DuplicateSlices), "count")
	fmt.Printf("%d TCPs created at once; manager SIGKILLed with %d Deployments and %d CAs written, back 5 s later; all converged %.1f s after the restart\n",
		len(all), atKill, casAtKill, recovery.Seconds())
	if len(replaced) > 0 {
		fmt.Printf("CAs replaced after their first issue: %v\n", head(replaced))
	}
	fmt.Println(verdict(len(replaced) == 0 && w.count() == len(all) && len(a.LeakedUsers) == 0 && a.DuplicateSlices == 0,
		"every TCP converges with its CA generated once, 0 leaked users, 0 duplicate slices",
		fmt.Sprintf("%d of %d CAs, %d replaced", w.count(), len(all), len(replaced)),
		fmt.Sprintf("%d leaked, %d duplicate", len(a.LeakedUsers), a.DuplicateSlices)))
	return nil
}

// caWatch records each CA Secret's identity (uid and ca.crt) as first seen, and which changed.
type caWatch struct {
	mu       sync.Mutex
	first    map[string]string
	replaced map[string]bool
}

func (w *caWatch) observe(h *harness, prefix string) error {
	var list corev1.SecretList
	if err := h.c.List(h.ctx, &list, client.InNamespace(namespace)); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	suffix := "-" + string(tenantpki.CA)
	for _, s := range list.Items {
		if !strings.HasPrefix(s.Name, prefix+"-") || !strings.HasSuffix(s.Name, suffix) {
			continue
		}
		id := string(s.UID) + "/" + dataSum(map[string][]byte{"ca.crt": s.Data[tenantpki.KeyCACert]})
		if len(s.Data[tenantpki.KeyCACert]) == 0 {
			continue // created, not filled yet
		}
		if f, ok := w.first[s.Name]; !ok {
			w.first[s.Name] = id
		} else if f != id {
			w.replaced[s.Name] = true
		}
	}
	return nil
}

func (w *caWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.first)
}

func (w *caWatch) replacedNames() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for n := range w.replaced {
		out = append(out, n)
	}
	return out
}
