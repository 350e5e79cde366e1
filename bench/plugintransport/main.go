// Command plugintransport measures what the plugin transport (go-plugin, gRPC over a Unix
// socket with AutoMTLS) adds to a datastore call: the etcd driver is called in-process and
// through its plugin binary, in the same run against the same real etcd, with the calls of the
// two modes interleaved in batches so that drift of the machine affects both alike. Then it
// times GetUsage through the plugin on a tenant of -usage-keys keys (usage.go).
//
// It prints one `metric NAME VALUE UNIT` line per figure (read by hack/bench.sh) and notes.
//
//	go run . -plugin /path/to/kamaji-datastore-etcd
package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/openhcp/kamaji/bench/internal/benchtb"
	"math"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/openhcp/kamaji/plugins/datastore-etcd/driver"
	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit"
)

type op struct {
	name  string
	calls int
	call  func(ctx context.Context, p datastore.Plugin) error
}

func main() {
	pluginPath := flag.String("plugin", "", "etcd plugin binary (plugins/datastore-etcd/cmd/kamaji-datastore-etcd), required")
	probeCalls := flag.Int("probe-calls", 10000, "measured Probe calls per mode")
	ensureCalls := flag.Int("ensure-calls", 1000, "measured EnsureTenant calls per mode")
	batch := flag.Int("batch", 50, "calls in a row in one mode before switching to the other")
	aim := flag.Duration("aim", 200*time.Microsecond, "transport overhead aimed at, at p50")
	usageKeys := flag.Int("usage-keys", 20000, "keys of the tenant whose usage GetUsage reports (0: no usage figures)")
	flag.Parse()
	if *pluginPath == "" || *probeCalls <= 0 || *ensureCalls <= 0 || *batch <= 0 {
		flag.Usage()
		os.Exit(2)
	}

	tb := &benchtb.TB{Prog: "plugintransport"}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		tb.RunCleanups()
		os.Exit(130)
	}()
	defer tb.RunCleanups()

	etcd := testkit.StartEtcd(tb)
	cfg := etcd.Config()

	direct := driver.New()
	tb.Cleanup(direct.Close)
	sum, err := sdk.FileSHA256(*pluginPath)
	if err != nil {
		tb.Fatal(err)
	}
	remote, err := datastore.NewClient(sdk.ClientConfig{Path: *pluginPath, SHA256: sum})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = remote.Close() })

	// One deadline for the run, as a reconcile carries one: the client then adds no timer of
	// its own per call.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	tenant := datastore.Tenant{Namespace: "bench", Name: "bench-a", Schema: "bench_a", Username: "bench_a"}
	if _, err := direct.EnsureTenant(ctx, cfg, tenant); err != nil {
		tb.Fatalf("create the tenant: %v", err)
	}
	tb.Cleanup(func() { _ = direct.DeleteTenant(context.Background(), cfg, tenant) })

	ops := []op{
		{"probe", *probeCalls, func(ctx context.Context, p datastore.Plugin) error {
			_, err := p.Probe(ctx)
			return err
		}},
		{"ensure-tenant", *ensureCalls, func(ctx context.Context, p datastore.Plugin) error {
			_, err := p.EnsureTenant(ctx, cfg, tenant)
			return err
		}},
	}
	fmt.Printf("etcd driver in-process (direct) vs through the plugin transport (plugin); GOMAXPROCS=%d; EnsureTenant on an existing tenant\n", runtime.GOMAXPROCS(0))
	for _, o := range ops {
		d, p, err := measure(ctx, o, *batch, direct, remote)
		if err != nil {
			tb.Fatalf("%s: %v", o.name, err)
		}
		dp50, dp99 := percentile(d, 0.50), percentile(d, 0.99)
		pp50, pp99 := percentile(p, 0.50), percentile(p, 0.99)
		metric(o.name+".direct.p50", us(dp50), "us")
		metric(o.name+".direct.p99", us(dp99), "us")
		metric(o.name+".plugin.p50", us(pp50), "us")
		metric(o.name+".plugin.p99", us(pp99), "us")
		metric(o.name+".overhead.p50", us(pp50-dp50), "us")
		metric(o.name+".ratio.p50", float64(pp50)/float64(max(dp50, 1)), "x")
		metric(o.name+".ratio.p99", float64(pp99)/float64(max(dp99, 1)), "x")
		verdict := "meets"
		if pp50-dp50 >= *aim {
			verdict = "MISSES"
		}
		fmt.Printf("%s: %d calls per mode; transport overhead at p50 %.1f us %s the aim of < %.0f us\n",
			o.name, o.calls, us(pp50-dp50), verdict, us(*aim))
	}
	if *usageKeys > 0 {
		if err := usageFigures(ctx, tb, direct, remote, cfg, *usageKeys); err != nil {
			tb.Fatalf("usage: %v", err)
		}
	}
}

// measure warms both modes up, then records every call's latency, alternating modes every
// batch calls and which mode goes first every round.
func measure(ctx context.Context, o op, batch int, direct, remote datastore.Plugin) (d, p []time.Duration, err error) {
	warm := max(o.calls/10, 10)
	for _, pl := range []datastore.Plugin{direct, remote} {
		for range warm {
			if err := o.call(ctx, pl); err != nil {
				return nil, nil, err
			}
		}
	}
	d, p = make([]time.Duration, 0, o.calls), make([]time.Duration, 0, o.calls)
	run := func(pl datastore.Plugin, out *[]time.Duration) error {
		for range min(batch, o.calls-len(*out)) {
			start := time.Now()
			if err := o.call(ctx, pl); err != nil {
				return err
			}
			*out = append(*out, time.Since(start))
		}
		return nil
	}
	for round := 0; len(d) < o.calls || len(p) < o.calls; round++ {
		first, second := func() error { return run(direct, &d) }, func() error { return run(remote, &p) }
		if round%2 == 1 {
			first, second = second, first
		}
		if err := first(); err != nil {
			return nil, nil, err
		}
		if err := second(); err != nil {
			return nil, nil, err
		}
	}
	return d, p, nil
}

// percentile is the nearest-rank percentile q (0..1] of ds.
func percentile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(i, 0)]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func metric(name string, v float64, unit string) {
	fmt.Printf("metric %s %.2f %s\n", name, v, unit)
}
