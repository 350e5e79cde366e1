package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/openhcp/kamaji/core/metrics/metricstest"
)

// metric prints a figure in hack/chaos.sh's format (that of hack/bench.sh).
func metric(name string, value float64, unit string) {
	fmt.Printf("metric %s %s %s\n", name, formatValue(value), unit)
}

func formatValue(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// verdict is the line a scenario ends with: whether its aim is met, and the figures that
// decide it. A missed aim is a finding, not a failure of the suite.
func verdict(met bool, aim string, details ...string) string {
	word := "aim met"
	if !met {
		word = "aim missed"
	}
	line := "verdict: " + word + " (" + aim + ")"
	if len(details) > 0 {
		line += ": " + strings.Join(details, "; ")
	}
	return line
}

// percentile is the p-th percentile (nearest rank) of ds; 0 for none.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

// histogramQuantile estimates quantile q of the observations a histogram series gained between
// two scrapes (after minus before), by linear interpolation inside the bucket that holds it, as
// Prometheus's histogram_quantile does. ok is false when nothing was observed in between.
func histogramQuantile(before, after metricstest.Families, name string, labels map[string]string, q float64) (seconds float64, ok bool) {
	b, a := buckets(before, name, labels), buckets(after, name, labels)
	if len(a) == 0 {
		return 0, false
	}
	bounds := make([]float64, 0, len(a))
	for ub := range a {
		bounds = append(bounds, ub)
	}
	slices.Sort(bounds)
	counts := make([]float64, len(bounds))
	for i, ub := range bounds {
		counts[i] = a[ub] - b[ub]
	}
	total := counts[len(counts)-1] // +Inf is the largest bound
	if total <= 0 {
		return 0, false
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i, ub := range bounds {
		if counts[i] >= rank {
			if math.IsInf(ub, 1) {
				return lower, true // beyond the last finite bound: its value is all that is known
			}
			inBucket := counts[i] - below
			if inBucket <= 0 {
				return ub, true
			}
			return lower + (ub-lower)*(rank-below)/inBucket, true
		}
		lower, below = ub, counts[i]
	}
	return lower, true
}

// buckets adds up the cumulative bucket counts, by upper bound (+Inf included), of every series
// of histogram name whose labels include labels.
func buckets(f metricstest.Families, name string, labels map[string]string) map[float64]float64 {
	out := map[float64]float64{}
	for _, m := range f[name].GetMetric() {
		if !metricstest.Matches(m, labels) || m.GetHistogram() == nil {
			continue
		}
		h := m.GetHistogram()
		inf := false
		for _, bk := range h.GetBucket() {
			out[bk.GetUpperBound()] += float64(bk.GetCumulativeCount())
			inf = inf || math.IsInf(bk.GetUpperBound(), 1)
		}
		if !inf { // the text format lists the +Inf bucket, a registry does not
			out[math.Inf(1)] += float64(h.GetSampleCount())
		}
	}
	return out
}
