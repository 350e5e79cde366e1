package main

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openhcp/kamaji/core/metrics/metricstest"
)

func TestVerdict(t *testing.T) {
	if got := verdict(true, "0 leaked", "0 leaked, 0 duplicate"); got != "verdict: aim met (0 leaked): 0 leaked, 0 duplicate" {
		t.Errorf("got %q", got)
	}
	if got := verdict(false, "residue 0"); got != "verdict: aim missed (residue 0)" {
		t.Errorf("got %q", got)
	}
}

// The quantile is read from the observations made between two gathers of a real histogram.
func TestHistogramQuantile(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "x_seconds", Buckets: []float64{0.1, 1, 10}}, []string{"controller"})
	reg.MustRegister(h)
	other := h.WithLabelValues("other")
	tcp := h.WithLabelValues("tcp")
	for range 50 {
		tcp.Observe(5) // before: not counted
	}
	before, err := metricstest.Gather(reg)
	if err != nil {
		t.Fatal(err)
	}
	for range 98 {
		tcp.Observe(0.05)
	}
	tcp.Observe(0.5)
	tcp.Observe(20) // beyond the last bound
	for range 1000 {
		other.Observe(9) // another series: not counted
	}
	after, err := metricstest.Gather(reg)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"controller": "tcp"}
	// 100 new observations: rank 50 in the first bucket, rank 99 is the only one in (0.1, 1],
	// rank 100 beyond 10.
	for _, c := range []struct{ q, want float64 }{{0.5, 0.1 * 50 / 98}, {0.99, 1}, {1, 10}} {
		got, ok := histogramQuantile(before, after, "x_seconds", labels, c.q)
		if !ok || math.Abs(got-c.want) > 1e-9 {
			t.Errorf("q%.2f = %v (ok %v), want %v", c.q, got, ok, c.want)
		}
	}
	if _, ok := histogramQuantile(after, after, "x_seconds", labels, 0.99); ok {
		t.Error("no observation in between must give ok=false")
	}
	if _, ok := histogramQuantile(before, after, "missing_seconds", labels, 0.99); ok {
		t.Error("a missing family must give ok=false")
	}
}

func TestMetricLine(t *testing.T) {
	if got := formatValue(3); got != "3" {
		t.Errorf("got %q", got)
	}
	if got := formatValue(1.234); !strings.HasPrefix(got, "1.23") {
		t.Errorf("got %q", got)
	}
}
