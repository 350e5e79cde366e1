package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// startQueue reads the start queue's lengths (nil: no queue, both 0).
var startQueue atomic.Pointer[func() (starting, waiting int)]

// starts reads the queue at scrape time: it changes at every pass of a starting TCP, and a
// gauge set there would take a lock for nothing most of the time.
var starts = startsCollector{desc: prometheus.NewDesc("kamaji_control_plane_starts",
	"Control-plane starts by state: starting (counted against max-starting-control-planes: admitted or under way, no replica available yet, for 30s at most) and waiting (their turn); both 0 without a limit.",
	[]string{"state"}, nil)}

type startsCollector struct{ desc *prometheus.Desc }

func (c startsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c startsCollector) Collect(ch chan<- prometheus.Metric) {
	starting, waiting := 0, 0
	if f := startQueue.Load(); f != nil {
		starting, waiting = (*f)()
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(starting), "starting")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(waiting), "waiting")
}

// SetStartQueue has kamaji_control_plane_starts read the queue's lengths from f.
func SetStartQueue(f func() (starting, waiting int)) { startQueue.Store(&f) }
