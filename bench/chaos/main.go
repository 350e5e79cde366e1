// Command chaos runs one scenario of the chaos suite (hack/chaos.sh, `make chaos`; issue 15):
// faults injected into real processes while the manager provisions, changes or deletes many
// TenantControlPlanes, and the figures that tell how it came through. Each run starts its own
// environment (harness.go): a real admin kube-apiserver and etcd, the DataStore's own etcd
// behind a relay that can be cut (blackhole.go), and `kamaji manager` as a process that starts
// the etcd datastore plugin (and, for hung-addon, the test addon plugin of ./hungaddon) as
// processes. No kubelet runs: the TCPs' pods never start, so "converged" is what the manager
// does (tenants.go), not Ready.
//
// Output: "metric <name> <value> <unit>" lines, free-text notes, and a "verdict: aim met|aim
// missed (...)" line; the exit status is non-zero only when the scenario could not run.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/openhcp/kamaji/bench/internal/benchtb"
)

type options struct {
	scenario                         string
	tcps, workers                    int
	kamaji, etcdPlugin, hungPlugin   string
	killEvery, killFor, partitionFor time.Duration
	deleteOutage                     time.Duration
}

var scenarios = map[string]func(*harness, options) error{
	"plugin-kill":   pluginKill,
	"partition":     partition,
	"manager-kill":  managerKill,
	"hung-addon":    hungAddon,
	"delete-outage": deleteOutage,
}

func main() {
	var o options
	flag.StringVar(&o.scenario, "scenario", "", "plugin-kill, partition, manager-kill, hung-addon or delete-outage")
	flag.IntVar(&o.tcps, "tcps", 50, "TenantControlPlanes of the scenario")
	flag.IntVar(&o.workers, "workers", 4, "--max-concurrent-tcp-reconciles of the manager (the local plane's setting)")
	flag.StringVar(&o.kamaji, "kamaji", "", "path of the kamaji binary")
	flag.StringVar(&o.etcdPlugin, "plugin", "", "path of the etcd datastore plugin binary")
	flag.StringVar(&o.hungPlugin, "hung-plugin", "", "path of the hung addon plugin binary (hung-addon)")
	flag.DurationVar(&o.killEvery, "kill-every", 5*time.Second, "plugin-kill: SIGKILL period")
	flag.DurationVar(&o.killFor, "kill-for", 2*time.Minute, "plugin-kill: how long the plugin is killed")
	flag.DurationVar(&o.partitionFor, "partition-for", time.Minute, "partition: how long the DataStore's etcd is unreachable")
	flag.DurationVar(&o.deleteOutage, "delete-outage", 2*time.Minute, "delete-outage: how long the DataStore's etcd is unreachable")
	flag.Parse()
	run, ok := scenarios[o.scenario]
	if !ok || o.kamaji == "" || o.etcdPlugin == "" || o.tcps < 1 {
		fmt.Fprintln(os.Stderr, "chaos: -scenario (plugin-kill|partition|manager-kill|hung-addon|delete-outage), -tcps >= 1, -kamaji and -plugin are required")
		os.Exit(2)
	}
	if o.scenario == "hung-addon" && o.hungPlugin == "" {
		fmt.Fprintln(os.Stderr, "chaos: hung-addon needs -hung-plugin")
		os.Exit(2)
	}
	if o.scenario != "hung-addon" {
		o.hungPlugin = "" // the other scenarios run without it
	}
	tb := &benchtb.TB{Prog: "chaos " + o.scenario}
	defer tb.RunCleanups()
	h, err := setup(tb, o)
	if err != nil {
		tb.Fatal(err)
	}
	if err := run(h, o); err != nil {
		tb.Fatal(err) // the manager's log stays, for the diagnosis
	}
	_ = os.Remove(h.logPath)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "chaos: "+format+"\n", args...)
}
