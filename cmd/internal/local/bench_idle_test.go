package local

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// statTicks sums utime and stime, counting fields after the command name's last ')', which
// may hold spaces and parentheses.
func TestStatTicks(t *testing.T) {
	for _, tc := range []struct {
		stat  string
		ticks int64
		ok    bool
	}{
		{"23661 (cat) R 23618 23618 4210 0 -1 4194304 99 0 0 0 70 12 0 0 20 0 1 0 266789", 82, true},
		{"7 (kube apiserver (x)) S 1 7 7 0 -1 4194560 5 0 0 0 1500 250 0 0 20 0 30 0 9", 1750, true},
		{"7 (short) S 1 7", 0, false},
		{"no parenthesis", 0, false},
	} {
		ticks, ok := statTicks(tc.stat)
		if ticks != tc.ticks || ok != tc.ok {
			t.Errorf("statTicks(%q) = %d, %v; want %d, %v", tc.stat, ticks, ok, tc.ticks, tc.ok)
		}
	}
}

// The per-TCP figures are what the TCPs added over the base window, by program; a process
// seen in only one sample (started or ended within the window) is left out, as is a pid whose
// program changed.
func TestIdleFigures(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sample := func(at time.Time, cpu map[int]procCPU, writes, reads float64) idleSample {
		return idleSample{at: at, cpu: cpu, store: map[string]float64{
			"etcd_server_proposals_committed_total": writes, "etcd_mvcc_range_total": reads}}
	}
	// Base: the admin apiserver at 2% of a core, etcd at 1%, 1 write and 2 reads a second.
	base := rates(
		sample(t0, map[int]procCPU{1: {"kube-apiserver", 0}, 2: {"etcd", 0}, 3: {"kamaji", 0}}, 0, 0),
		sample(t0.Add(100*time.Second), map[int]procCPU{1: {"kube-apiserver", 200}, 2: {"etcd", 100}, 3: {"kamaji", 0}}, 100, 200))
	// Two TCPs: their apiservers at 3% each, the etcd now at 2%, the manager at 1%, a process
	// that started in the window (pid 9) and a reused pid (3 became kube-scheduler) ignored.
	after := rates(
		sample(t0, map[int]procCPU{1: {"kube-apiserver", 0}, 2: {"etcd", 0}, 3: {"kamaji", 0}, 4: {"kube-apiserver", 0}, 5: {"kube-apiserver", 0}, 6: {"kamaji-manager", 0}}, 0, 0),
		sample(t0.Add(100*time.Second), map[int]procCPU{1: {"kube-apiserver", 200}, 2: {"etcd", 200}, 3: {"kube-scheduler", 500}, 4: {"kube-apiserver", 300}, 5: {"kube-apiserver", 300}, 6: {"kamaji-manager", 100}, 9: {"kube-controller-manager", 900}}, 400, 1400))
	var out bytes.Buffer
	printIdle(&out, "lean.", 2, base, after)
	want := `metric lean.idle.cpu.per-tcp 4.00 %core
metric lean.idle.cpu.per-tcp.kube-apiserver 3.00 %core
metric lean.idle.cpu.per-tcp.kube-controller-manager 0.00 %core
metric lean.idle.cpu.per-tcp.kube-scheduler 0.00 %core
metric lean.idle.cpu.per-tcp.etcd 0.50 %core
metric lean.idle.cpu.per-tcp.rest 0.50 %core
metric lean.idle.datastore.writes.per-tcp 90.0 /min
metric lean.idle.datastore.reads.per-tcp 360.0 /min
`
	if out.String() != want {
		t.Errorf("printIdle:\n%s\nwant:\n%s", out.String(), want)
	}

	// Counters that could not be read: the CPU figures, and a line that says so.
	out.Reset()
	after.storeErr = errors.New("connection refused")
	printIdle(&out, "", 2, base, after)
	if !strings.Contains(out.String(), "idle: the datastore's counters could not be read") || strings.Contains(out.String(), "writes") {
		t.Errorf("printIdle without counters:\n%s", out.String())
	}
}
