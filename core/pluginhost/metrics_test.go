package pluginhost

import (
	"context"
	"strconv"
	"testing"
	"time"

	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/openhcp/kamaji/core/metrics/metricstest"
	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

func scrape(t *testing.T) metricstest.Families {
	t.Helper()
	f, err := metricstest.Gather(ctrlmetrics.Registry)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// What an operator scraping the manager sees of a real plugin process: its identity, each RPC
// by method and gRPC code, and a restart when the process is killed.
func TestPluginMetrics(t *testing.T) {
	path, sha := testPlugin(t)
	const name = "metrics-fake" // no other test uses it: the counters are the process's
	plugin := settings.Plugin{Kind: settings.KindDataStore, Name: name, Path: path, SHA256: sha, Drivers: []string{"fake"}}
	clk := newClock()
	h := New([]settings.Plugin{plugin}, Options{Now: clk.Now, ProbeInterval: -1})
	defer h.Close()
	self := map[string]string{"plugin": name}

	if v, ok := scrape(t).Value("kamaji_plugin_restarts_total", self); !ok || v != 0 {
		t.Fatalf("a configured plugin's restart counter: %v (present %t), want 0", v, ok)
	}
	c, _, err := h.DataStore(context.Background(), "fake")
	if err != nil {
		t.Fatal(err)
	}
	f := scrape(t)
	info := map[string]string{"plugin": name, "kind": "datastore", "version": "0.0.1", "protocol": strconv.Itoa(sdk.ProtocolVersion)}
	if v, ok := f.Value("kamaji_plugin_info", info); !ok || v != 1 {
		t.Fatalf("kamaji_plugin_info%v: %v (present %t); series %v", info, v, ok, f.Series("kamaji_plugin_info", self))
	}
	if v, _ := f.Value("kamaji_plugin_up", self); v != 1 {
		t.Fatalf("kamaji_plugin_up = %v while the plugin runs", v)
	}

	if _, err := c.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The fake driver refuses a configuration without endpoints: InvalidArgument.
	if err := c.ValidateConfig(context.Background(), datastore.Config{}); err == nil {
		t.Fatal("an empty configuration was accepted")
	}
	f = scrape(t)
	for _, rpc := range []map[string]string{
		{"plugin": name, "method": "Identity/Probe", "code": "OK"},
		{"plugin": name, "method": "DataStore/ValidateConfig", "code": "InvalidArgument"},
	} {
		if n, ok := f.Value("kamaji_plugin_rpc_duration_seconds", rpc); !ok || n < 1 {
			t.Errorf("no RPC observed as %v; series: %v", rpc, f.Series("kamaji_plugin_rpc_duration_seconds", self))
		}
	}
	// go-plugin's own services (its log stream, its shutdown) are not the contract's RPCs.
	for _, s := range f.Series("kamaji_plugin_rpc_duration_seconds", self) {
		if s["method"] == "" || s["method"][0] == '/' || s["method"] == "GRPCStdio/StreamStdio" {
			t.Errorf("unexpected method label %v", s)
		}
	}

	killAndWait(t, c)
	if _, _, err := h.DataStore(context.Background(), "fake"); err == nil {
		t.Fatal("a killed plugin was handed out")
	}
	f = scrape(t)
	if v, _ := f.Value("kamaji_plugin_restarts_total", self); v != 1 {
		t.Fatalf("kamaji_plugin_restarts_total = %v after one kill, want 1", v)
	}
	if v, _ := f.Value("kamaji_plugin_up", self); v != 0 {
		t.Fatalf("kamaji_plugin_up = %v after the kill, want 0", v)
	}
	clk.Add(time.Minute) // past the backoff
	if _, _, err := h.DataStore(context.Background(), "fake"); err != nil {
		t.Fatal(err)
	}
	if v, _ := scrape(t).Value("kamaji_plugin_up", self); v != 1 {
		t.Fatalf("kamaji_plugin_up = %v after the restart, want 1", v)
	}

	h.Close()
	f = scrape(t)
	if s := f.Series("kamaji_plugin_info", self); len(s) != 0 {
		t.Fatalf("a stopped host left %v", s)
	}
	if v, _ := f.Value("kamaji_plugin_restarts_total", self); v != 1 {
		t.Fatalf("the restart count must survive the host: %v", v)
	}
}

// A failed start is counted by its reason.
func TestPluginStartFailureMetric(t *testing.T) {
	const name = "metrics-missing"
	h := New([]settings.Plugin{{Kind: settings.KindDataStore, Name: name, Path: "/nonexistent/kamaji-datastore-x", SHA256: "00", Drivers: []string{"x"}}}, Options{ProbeInterval: -1})
	defer h.Close()
	if _, _, err := h.DataStore(context.Background(), "x"); err == nil {
		t.Fatal("a missing binary started")
	}
	labels := map[string]string{"plugin": name, "reason": ReasonBinaryMissing}
	if v, _ := scrape(t).Value("kamaji_plugin_start_failures_total", labels); v != 1 {
		t.Fatalf("kamaji_plugin_start_failures_total%v = %v, want 1", labels, v)
	}
}
