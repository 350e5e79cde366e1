package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Step results, the values of kamaji_handler_time_seconds' result label.
const (
	ResultSuccess = "success"
	ResultError   = "error"
)

// handlerTime spans a millisecond (a step with nothing to do) to the plugin call deadline.
var handlerTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "kamaji_handler_time_seconds",
	Help:    "Time one TenantControlPlane reconcile step took, by step and result (success or error).",
	Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
}, []string{"step", "result"})

// ObserveStep records how long one run of a reconcile step took and whether it failed.
func ObserveStep(step string, took time.Duration, err error) {
	result := ResultSuccess
	if err != nil {
		result = ResultError
	}
	handlerTime.WithLabelValues(step, result).Observe(took.Seconds())
}
