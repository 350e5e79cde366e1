package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/openhcp/kamaji/bench/internal/benchtb"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// usageValueBytes is the size of each value written for the usage figures: about a small
// Kubernetes object as the apiserver stores it.
const usageValueBytes = 1024

// usageFigures times GetUsage through the plugin on a tenant holding keys keys: what the
// DataStore controller's usage refresh costs per key stored, and so how many keys one call
// covers within the controller's call timeout.
func usageFigures(ctx context.Context, tb *benchtb.TB, direct, remote datastore.Plugin, cfg datastore.Config, keys int) error {
	t := datastore.Tenant{Namespace: "bench", Name: "bench-usage", Schema: "bench_usage", Username: "bench_usage"}
	if _, err := direct.EnsureTenant(ctx, cfg, t); err != nil {
		return err
	}
	tb.Cleanup(func() { _ = direct.DeleteTenant(context.Background(), cfg, t) })
	value := make([]byte, usageValueBytes)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	chunks := func(yield func([]datastore.KeyValue, error) bool) {
		for from := 0; from < keys; from += 500 {
			var c []datastore.KeyValue
			for i := from; i < min(from+500, keys); i++ {
				c = append(c, datastore.KeyValue{Key: fmt.Appendf(nil, "/registry/configmaps/bench/cm-%07d", i), Value: value})
			}
			if !yield(c, nil) {
				return
			}
		}
	}
	if _, err := direct.Import(ctx, cfg, t, chunks); err != nil {
		return err
	}
	var times []time.Duration
	for range 5 {
		start := time.Now()
		rep, err := remote.GetUsage(ctx, cfg, []datastore.Tenant{t})
		if err != nil {
			return err
		}
		times = append(times, time.Since(start))
		if len(rep.Tenants) != 1 || rep.Tenants[0].Usage.Keys != int64(keys) {
			return fmt.Errorf("GetUsage reported %+v, want %d keys", rep.Tenants, keys)
		}
	}
	slices.Sort(times)
	p50 := times[len(times)/2]
	perSecond := float64(keys) / p50.Seconds()
	metric("usage.get.p50", float64(p50)/float64(time.Millisecond), "ms")
	metric("usage.keys-per-second", perSecond, "keys/s")
	fmt.Printf("usage: GetUsage through the plugin counted %d keys of %d bytes in %.0f ms (p50 of 5): %.0f keys/s, so one call within the DataStore controller's 10 s call timeout covers about %.0f keys\n",
		keys, usageValueBytes, float64(p50)/float64(time.Millisecond), perSecond, perSecond*10)
	return nil
}
