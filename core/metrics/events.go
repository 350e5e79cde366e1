package metrics

import "github.com/prometheus/client_golang/prometheus"

var eventsDropped = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "kamaji_events_dropped_total",
	Help: "Kubernetes Events the manager did not write: its queue was full, or the apiserver refused them or stayed unreachable or overloaded through every attempt.",
})

// EventDropped counts an Event that was not written.
func EventDropped() { eventsDropped.Inc() }
