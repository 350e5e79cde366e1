package datastore

import (
	"slices"
	"time"
)

// UsagePolicy says how often each tenant's usage is counted and what one DataStore pass may
// spend on it. Counting a tenant's usage reads all it stores (the etcd driver scans its keys),
// so a DataStore with many or large tenants is counted over several passes, a few calls each,
// rather than in one call that outgrows the call timeout and is then retried whole at every
// pass.
type UsagePolicy struct {
	// Interval: each tenant is counted about this often, while the limits below allow it.
	Interval time.Duration
	// AsleepInterval replaces Interval for a tenant that sleeps (or is scaled to zero) and
	// already slept at its last count: no apiserver of its writes to its datastore meanwhile
	// (only a restore does, see docs/backup.md).
	AsleepInterval time.Duration
	// BatchKeys: a GetUsage call asks for tenants whose last reported keys add up to at most
	// this (a larger tenant alone).
	BatchKeys int64
	// BatchTenants: at most this many tenants per call.
	BatchTenants int
	// PassCalls: at most this many GetUsage calls per pass of the DataStore.
	PassCalls int
	// Rewrite: a count that finds the figures the TCP's status already has (bytes and keys) is
	// written only once those are this old, to date them anew: an idle tenant's count costs no
	// status write, and no update of the TCP in every watcher's cache, at each interval.
	Rewrite time.Duration
}

// DefaultUsagePolicy: every 5 minutes, every hour while asleep, the same figures written again
// hourly. The etcd driver counted 93,000
// to 97,000 keys of 1 KiB a second through its plugin (make bench, plugintransport section), so
// a call of 200,000 keys takes about 2 s of the 10 s call timeout, and a pass at most twice
// that, every 30 s: up to 800,000 keys a minute per DataStore, which covers 4 million keys
// within the 5-minute interval.
var DefaultUsagePolicy = UsagePolicy{Interval: 5 * time.Minute, AsleepInterval: time.Hour, BatchKeys: 200_000, BatchTenants: 500, PassCalls: 2, Rewrite: time.Hour}

// unknownUsageKeys is what a tenant without a report is taken to hold when batching.
const unknownUsageKeys = 1_000

func (l UsagePolicy) withDefaults() UsagePolicy {
	d := DefaultUsagePolicy
	if l.Interval > 0 {
		d.Interval = l.Interval
	}
	if l.AsleepInterval > 0 {
		d.AsleepInterval = l.AsleepInterval
	}
	if l.BatchKeys > 0 {
		d.BatchKeys = l.BatchKeys
	}
	if l.BatchTenants > 0 {
		d.BatchTenants = l.BatchTenants
	}
	if l.PassCalls > 0 {
		d.PassCalls = l.PassCalls
	}
	if l.Rewrite > 0 {
		d.Rewrite = l.Rewrite
	}
	return d
}

// usageCandidate is a tenant of the DataStore, as the batching sees it.
type usageCandidate struct {
	// last is the later of its last report and the last call that asked for it (zero: never).
	last time.Time
	// keys it held at its last report; negative: unknown.
	keys int64
	// asleep: it sleeps, and slept at its last count.
	asleep bool
}

// usageBatches picks the tenants due a report (never asked for, or not for l.Interval, or
// l.AsleepInterval for one asleep) and groups them into at most l.PassCalls calls, the
// longest-waiting first: each tenant is counted about once per l.Interval while the limits
// allow it, and one that cannot be counted (its call failed) waits behind the others rather
// than blocking them. It returns indexes into cands.
func usageBatches(cands []usageCandidate, now time.Time, l UsagePolicy) [][]int {
	var due []int
	for i, c := range cands {
		every := l.Interval
		if c.asleep {
			every = l.AsleepInterval
		}
		if c.last.IsZero() || now.Sub(c.last) >= every {
			due = append(due, i)
		}
	}
	slices.SortStableFunc(due, func(a, b int) int { return cands[a].last.Compare(cands[b].last) })
	var out [][]int
	var batch []int
	var keys int64
	for _, i := range due {
		k := cands[i].keys
		if k < 0 {
			k = unknownUsageKeys
		}
		if len(batch) > 0 && (len(batch) == l.BatchTenants || keys+k > l.BatchKeys) {
			out = append(out, batch)
			if len(out) == l.PassCalls {
				return out
			}
			batch, keys = nil, 0
		}
		batch = append(batch, i)
		keys += k
	}
	if len(batch) > 0 {
		out = append(out, batch)
	}
	return out
}
