package main

import (
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"
)

// pluginKill: the etcd datastore plugin SIGKILLed every -kill-every for -kill-for while the
// manager works: the TCPs are created one after another over the first half of the window and
// every fifth is deleted again over the second half, so provisioning and deprovisioning both
// meet the kills. Figures: seconds from the end of the kills until every remaining TCP converged and
// the deleted ones are gone, then the etcd audit: users no TCP asks for (leaked), slices held
// twice by one TCP (duplicate), slices whose owner is gone (orphan). Aim: 0 leaked, 0 duplicate.
// The plugin is killed whenever a tick finds it running: the host restarts it on next use,
// after its restart backoff (1 s, doubling), so many ticks find none.
func pluginKill(h *harness, o options) error {
	const prefix = "kill"
	all := names(prefix, o.tcps)
	var deleted, keep []string
	for i, n := range all {
		if i%5 == 4 {
			deleted = append(deleted, n)
		} else {
			keep = append(keep, n)
		}
	}

	stop := make(chan struct{})
	var stopOnce sync.Once
	end := func() { stopOnce.Do(func() { close(stop) }) }
	defer end()
	killed := make(chan [2]int, 1)
	go func() {
		kills, ticks := 0, 0
		t := time.NewTicker(o.killEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				killed <- [2]int{kills, ticks}
				return
			case <-t.C:
				ticks++
				for _, pid := range h.pluginPIDs(h.etcdPluginBin) {
					if syscall.Kill(pid, syscall.SIGKILL) == nil {
						kills++
					}
				}
			}
		}
	}()

	logf("plugin-kill: killing the etcd plugin every %s for %s; %d TCPs created over the first half, %d deleted over the second", o.killEvery, o.killFor, len(all), len(deleted))
	start := time.Now()
	half := o.killFor / 2
	for i, name := range all {
		sleepUntil(start.Add(half * time.Duration(i) / time.Duration(len(all))))
		if err := h.createOne(name); err != nil {
			return err
		}
	}
	for i, name := range deleted {
		sleepUntil(start.Add(half + half*time.Duration(i)/time.Duration(max(1, len(deleted)))))
		if err := h.deleteTCPs([]string{name}); err != nil {
			return err
		}
	}
	sleepUntil(start.Add(o.killFor))
	end()
	k := <-killed
	kills, ticks := k[0], k[1]
	stopped := time.Now()

	s, err := h.snapshot(prefix)
	if err != nil {
		return err
	}
	atStop := s.countConverged(keep, "")
	logf("plugin-kill: %d kills; %d of %d TCPs converged when the kills stopped; waiting for the rest", kills, atStop, len(keep))
	if _, err := h.waitConverged(prefix, keep, "", 10*time.Minute); err != nil {
		return err
	}
	if err := h.waitGone(prefix, deleted, 10*time.Minute); err != nil {
		return err
	}
	recovery := time.Since(stopped)

	a, err := h.auditNow(prefix)
	if err != nil {
		return err
	}
	f, err := h.scrape()
	if err != nil {
		return err
	}
	metric("tcps", float64(len(all)), "count")
	metric("kills", float64(kills), "count")
	// A tick that finds no plugin process: the host had not started it again yet (its restart
	// backoff, or no call needed it).
	metric("ticks.without-plugin", float64(ticks-kills), "count")
	metric("plugin.restarts", f.Sum("kamaji_plugin_restarts_total", map[string]string{"plugin": etcdPluginName}), "count")
	metric("converged.at-stop", float64(atStop), "count")
	metric("recovery.seconds", recovery.Seconds(), "s")
	metric("leaked.users", float64(len(a.LeakedUsers)), "count")
	metric("duplicate.slices", float64(a.DuplicateSlices), "count")
	metric("orphan.slices", float64(len(a.OrphanSlices)), "count")
	metric("missing.slices", float64(a.Missing), "count")
	fmt.Printf("%d TCPs created and %d deleted while the plugin was SIGKILLed %d times (at %s ticks for %s); %d of the %d kept converged %.1f s after the kills stopped, the deleted ones gone\n",
		len(all), len(deleted), kills, o.killEvery, o.killFor, len(keep), len(keep), recovery.Seconds())
	if len(a.LeakedUsers) > 0 || len(a.OrphanSlices) > 0 {
		fmt.Printf("leaked users %v, orphan slices %v\n", head(a.LeakedUsers), head(a.OrphanSlices))
	}
	fmt.Println(verdict(len(a.LeakedUsers) == 0 && a.DuplicateSlices == 0 && len(a.OrphanSlices) == 0 && a.Missing == 0,
		"0 leaked users, 0 duplicate or orphan slices",
		fmt.Sprintf("%d leaked, %d duplicate, %d orphan, %d missing", len(a.LeakedUsers), a.DuplicateSlices, len(a.OrphanSlices), a.Missing)))
	return nil
}

// auditNow compares the DataStore's etcd with the TCPs of prefix that exist now.
func (h *harness) auditNow(prefix string) (audit, error) {
	s, err := h.snapshot(prefix)
	if err != nil {
		return audit{}, err
	}
	es, err := readSlices(h.ctx, h.etcdCli)
	if err != nil {
		return audit{}, err
	}
	return auditSlices(es, s.liveTenants()), nil
}

// waitGone waits until none of the named TCPs exists.
func (h *harness) waitGone(prefix string, names []string, timeout time.Duration) error {
	return retry(h.ctx, timeout, func() error {
		s, err := h.snapshot(prefix)
		if err != nil {
			return err
		}
		left := 0
		for _, n := range names {
			if _, ok := s.tcps[n]; ok {
				left++
			}
		}
		if left > 0 {
			return fmt.Errorf("%d of %d deleted TCPs still exist (manager log %s)", left, len(names), h.logPath)
		}
		return nil
	})
}

func sleepUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}

// head is the first few of a list, for a note.
func head(s []string) []string {
	return slices.Clone(s[:min(len(s), 5)])
}
