package metrics

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

var (
	pluginRPCDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kamaji_plugin_rpc_duration_seconds",
		Help:    "Time of the RPCs the manager made to a plugin, by plugin (its kamaji.yaml name), method (Service/Method of the contract) and gRPC code.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"plugin", "method", "code"})
	pluginRestarts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kamaji_plugin_restarts_total",
		Help: "Times a running plugin process was lost (it exited, failed its probe or hung and was killed); the host starts it again on next use.",
	}, []string{"plugin"})
	pluginStartFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kamaji_plugin_start_failures_total",
		Help: "Plugin starts that failed, by plugin and reason (the condition reason, such as PluginChecksumMismatch).",
	}, []string{"plugin", "reason"})
	pluginInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kamaji_plugin_info",
		Help: "Always 1 for each plugin that has started: its kamaji.yaml name, kind (datastore or addon), version and transport protocol.",
	}, []string{"plugin", "kind", "version", "protocol"})
	pluginUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kamaji_plugin_up",
		Help: "1 while a process of the plugin runs, 0 once it was lost or failed to start.",
	}, []string{"plugin"})
)

// PluginConfigured makes the plugin's restart counter exist at zero, so rate() sees its first
// restart.
func PluginConfigured(plugin string) {
	pluginRestarts.WithLabelValues(plugin)
}

// PluginStarted records a running plugin process and what it announced.
func PluginStarted(plugin, kind, version string, protocol int) {
	pluginInfo.DeletePartialMatch(prometheus.Labels{"plugin": plugin})
	pluginInfo.WithLabelValues(plugin, kind, version, strconv.Itoa(protocol)).Set(1)
	pluginUp.WithLabelValues(plugin).Set(1)
}

// PluginLost records a running plugin process that exited, failed its probe or was killed.
func PluginLost(plugin string) {
	pluginRestarts.WithLabelValues(plugin).Inc()
	pluginUp.WithLabelValues(plugin).Set(0)
}

// PluginStartFailed records a start that failed, with the reason it failed for.
func PluginStartFailed(plugin, reason string) {
	pluginStartFailures.WithLabelValues(plugin, reason).Inc()
	pluginUp.WithLabelValues(plugin).Set(0)
}

// PluginStopped drops the plugin's info and up series: the host stopped it on purpose.
func PluginStopped(plugin string) {
	pluginInfo.DeletePartialMatch(prometheus.Labels{"plugin": plugin})
	pluginUp.DeleteLabelValues(plugin)
}

// PluginDialOptions add to the host's gRPC connection to a plugin the interceptors that time
// each RPC of the plugin contracts (go-plugin's own services, such as its log stream, are left
// out).
func PluginDialOptions(plugin string) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			start := time.Now()
			err := invoker(ctx, method, req, reply, cc, opts...)
			observeRPC(plugin, method, start, err)
			return err
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			start := time.Now()
			s, err := streamer(ctx, desc, cc, method, opts...)
			if err != nil {
				observeRPC(plugin, method, start, err)
				return nil, err
			}
			return &timedStream{ClientStream: s, plugin: plugin, method: method, start: start, serverStreams: desc.ServerStreams}, nil
		}),
	}
}

// observeRPC records one RPC of a plugin contract; the method is kept as Service/Method, the
// package (kamaji.datastore.v1) being implied by the plugin.
func observeRPC(plugin, fullMethod string, start time.Time, err error) {
	if !strings.HasPrefix(fullMethod, "/kamaji.") {
		return
	}
	method := strings.TrimPrefix(fullMethod, "/")
	if svc, m, ok := strings.Cut(method, "/"); ok {
		method = svc[strings.LastIndex(svc, ".")+1:] + "/" + m
	}
	pluginRPCDuration.WithLabelValues(plugin, method, status.Code(err).String()).Observe(time.Since(start).Seconds())
}

// timedStream observes a streaming RPC once, when it ends: a server stream when a receive
// fails (io.EOF being its normal end), a client stream when its one response arrives.
type timedStream struct {
	grpc.ClientStream
	plugin, method string
	start          time.Time
	serverStreams  bool
	once           sync.Once
}

func (s *timedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	switch {
	case errors.Is(err, io.EOF):
		s.done(nil)
	case err != nil:
		s.done(err)
	case !s.serverStreams:
		s.done(nil)
	}
	return err
}

func (s *timedStream) done(err error) {
	s.once.Do(func() { observeRPC(s.plugin, s.method, s.start, err) })
}
