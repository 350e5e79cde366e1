package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/openhcp/kamaji/core/metrics/metricstest"
)

// idleFigures is what the manager does with every TCP provisioned and nothing changing, over a
// window: reconciles per TCP per minute, datastore plugin RPCs per minute (EnsureTenant apart),
// the writes the admin apiserver served per minute (TCP status writes apart: each one replaces
// the TCP in every watcher's cache), and its RSS at the end and at its peak. Aim: close to zero
// (issue 15, "quiet at rest").
func idleFigures(ctx context.Context, cfg *rest.Config, metricsURL string, pid, count int, window time.Duration) error {
	// The last writes of the provisioning (status, usage) settle first: the window is rest only.
	time.Sleep(10 * time.Second)
	before, err := metricstest.Scrape(metricsURL)
	if err != nil {
		return err
	}
	apiBefore, err := apiserverRequests(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "provisioning: idle for %s\n", window)
	start := time.Now()
	var peak int64
	for time.Since(start) < window {
		if rss, err := rssBytes(pid); err == nil && rss > peak {
			peak = rss
		}
		time.Sleep(min(5*time.Second, window-time.Since(start)+time.Millisecond))
	}
	after, err := metricstest.Scrape(metricsURL)
	if err != nil {
		return err
	}
	apiAfter, err := apiserverRequests(ctx, cfg)
	if err != nil {
		return err
	}
	minutes := time.Since(start).Minutes()
	delta := func(name string, labels map[string]string) float64 {
		return after.Sum(name, labels) - before.Sum(name, labels)
	}
	reconciles := delta("controller_runtime_reconcile_total", map[string]string{"controller": "tenantcontrolplane"})
	rpcs := delta("kamaji_plugin_rpc_duration_seconds", map[string]string{"plugin": "etcd"})
	ensures := delta("kamaji_plugin_rpc_duration_seconds", map[string]string{"plugin": "etcd", "method": "DataStore/EnsureTenant"})
	rss, err := rssBytes(pid)
	if err != nil {
		return err
	}
	fmt.Printf("metric idle.minutes %.1f min\n", minutes)
	fmt.Printf("metric idle.reconciles.per-tcp-min %.4f 1/min\n", reconciles/float64(count)/minutes)
	fmt.Printf("metric idle.datastore-rpcs.per-min %.2f 1/min\n", rpcs/minutes)
	fmt.Printf("metric idle.ensure-tenant.per-min %.2f 1/min\n", ensures/minutes)
	writes, statusWrites := apiserverWrites(apiBefore, apiAfter)
	fmt.Printf("metric idle.writes.per-min %.1f 1/min\n", writes/minutes)
	fmt.Printf("metric idle.writes.tenantcontrolplanes-status.per-min %.1f 1/min\n", statusWrites/minutes)
	fmt.Printf("metric idle.manager.rss %.1f MB\n", float64(rss)/(1<<20))
	fmt.Printf("metric idle.manager.rss.peak %.1f MB\n", float64(max(peak, rss))/(1<<20))
	fmt.Printf("idle %.1f min with %d TCPs: %.0f reconciles, %.0f datastore plugin RPCs (%.0f EnsureTenant), %.0f writes to the admin apiserver (%.0f TCP status writes), RSS %.0f MB (peak %.0f MB)\n",
		minutes, count, reconciles, rpcs, ensures, writes, statusWrites, float64(rss)/(1<<20), float64(max(peak, rss))/(1<<20))
	return nil
}

// apiserverWrites counts the write requests the admin apiserver served between two scrapes of
// its metrics (every verb but reads), and among them the TCP status writes.
func apiserverWrites(before, after metricstest.Families) (writes, tcpStatus float64) {
	for key, n := range requestDeltas(before, after) {
		verb, resource, _ := strings.Cut(key, ".")
		if verb == "get" || verb == "list" {
			continue
		}
		writes += n
		if resource == "tenantcontrolplanes/status" {
			tcpStatus += n
		}
	}
	return writes, tcpStatus
}
