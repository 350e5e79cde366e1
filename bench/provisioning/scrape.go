package main

import (
	"fmt"
	"os"
	"time"

	"github.com/openhcp/kamaji/core/metrics/metricstest"
)

// scrapes is how many back-to-back scrapes scrapeFigures averages.
const scrapes = 5

// scrapeFigures is what a Prometheus scrape of /metrics costs the manager once every TCP is
// provisioned and its passes have settled: the heap allocated and the CPU used per scrape, the
// series served, and the manager's peak RSS once it has served them (the state metrics of
// every TCP and its certificates are built at each scrape).
func scrapeFigures(metricsURL string, pid int) error {
	settled := func() (metricstest.Families, error) {
		// The tail of the provisioning (second passes, status writes) ends first, for at most a
		// minute: what follows is the scrapes alone.
		var last float64 = -1
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(2 * time.Second) {
			f, err := metricstest.Scrape(metricsURL)
			if err != nil {
				return nil, err
			}
			n := f.Sum("controller_runtime_reconcile_total", nil)
			if n == last || time.Now().After(deadline) {
				return f, nil
			}
			last = n
		}
	}
	first, err := settled()
	if err != nil {
		return err
	}
	cpu0, err := cpuSeconds(pid)
	if err != nil {
		return err
	}
	last := first
	for range scrapes {
		if last, err = metricstest.Scrape(metricsURL); err != nil {
			return err
		}
	}
	cpu1, err := cpuSeconds(pid)
	if err != nil {
		return err
	}
	alloc := (last.Sum("go_memstats_alloc_bytes_total", nil) - first.Sum("go_memstats_alloc_bytes_total", nil)) / scrapes
	series := 0
	for _, mf := range last {
		series += len(mf.GetMetric())
	}
	hwm, err := statusKB(pid, "VmHWM:")
	if err != nil {
		return err
	}
	fmt.Printf("metric scrape.series %d count\n", series)
	fmt.Printf("metric scrape.alloc %.1f MB\n", alloc/(1<<20))
	fmt.Printf("metric scrape.cpu %.0f ms\n", (cpu1-cpu0)*1000/scrapes)
	fmt.Printf("metric manager.rss.peak-with-scrapes %.1f MB\n", float64(hwm)/(1<<10))
	fmt.Fprintf(os.Stderr, "provisioning: a scrape of %d series allocates %.1f MB and uses %.0f ms of the manager's CPU; its peak RSS is %.0f MB once served\n",
		series, alloc/(1<<20), (cpu1-cpu0)*1000/scrapes, float64(hwm)/(1<<10))
	return nil
}
