package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// What idle tenants cost at rest, besides memory: the CPU of every process of the plane and the
// shared datastore's reads and writes, measured over a window before the TCPs are applied and
// again once they have settled; the difference, per TCP, is what one idle tenant costs.
const (
	idleSettle = time.Minute // after the last TCP answers: its configuration, its first syncs
	idleWindow = time.Minute
)

// clockTicks is the kernel's unit of a process's CPU times in /proc/PID/stat (USER_HZ): 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// idleSample is one reading of the plane at rest: each process's CPU time so far (by pid, with
// its program), the datastore's counters, and when it was taken.
type idleSample struct {
	at       time.Time
	cpu      map[int]procCPU
	store    map[string]float64
	storeErr error // why the counters could not be read
}

type procCPU struct {
	prog  string
	ticks int64
}

// storeCounters are the datastore etcd's counters read: every write goes through raft as a
// proposal; ranges are its reads (a linearizable one, such as the apiserver's readiness check,
// included).
var storeCounters = []string{"etcd_server_proposals_committed_total", "etcd_mvcc_range_total"}

// idleRates is what the plane used per second over a window between two samples: CPU by
// program, in cores (a process present in only one of them is left out: it started or ended
// within the window), and the datastore's counters.
type idleRates struct {
	cpu      map[string]float64
	store    map[string]float64
	storeErr error
}

func (p *Plane) idleSample(ctx context.Context) idleSample {
	s := idleSample{at: time.Now(), cpu: map[int]procCPU{}}
	for _, pid := range p.planePIDs() {
		if c, ok := readProcCPU(pid); ok {
			s.cpu[pid] = c
		}
	}
	s.store, s.storeErr = p.datastoreCounters(ctx)
	return s
}

// measureIdle samples the plane, waits for the window, and returns the rates in between.
func (p *Plane) measureIdle(ctx context.Context, window time.Duration) (idleRates, error) {
	a := p.idleSample(ctx)
	if err := sleepCtx(ctx, window); err != nil {
		return idleRates{}, err
	}
	return rates(a, p.idleSample(ctx)), nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func rates(a, b idleSample) idleRates {
	secs := b.at.Sub(a.at).Seconds()
	r := idleRates{cpu: map[string]float64{}, store: map[string]float64{}}
	for pid, cb := range b.cpu {
		if ca, ok := a.cpu[pid]; ok && ca.prog == cb.prog {
			r.cpu[cb.prog] += float64(cb.ticks-ca.ticks) / clockTicks / secs
		}
	}
	if r.storeErr = errors.Join(a.storeErr, b.storeErr); r.storeErr == nil {
		for _, k := range storeCounters {
			r.store[k] = (b.store[k] - a.store[k]) / secs
		}
	}
	return r
}

// idlePrograms are the programs printed apart; the others (the admin apiserver is counted
// with the tenants' under kube-apiserver) are summed as "rest": the node, the manager, the
// plugins, kube-proxy.
var idlePrograms = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"}

// printIdle prints what n idle TCPs added to the plane's CPU (percent of one core per TCP, in
// all and by program) and to the datastore's writes and reads (per TCP per minute).
func printIdle(out io.Writer, metric string, n int, before, after idleRates) {
	per := func(prog string) float64 { return 100 * (after.cpu[prog] - before.cpu[prog]) / float64(n) }
	total, rest := 0.0, 0.0
	progs := map[string]bool{}
	for prog := range before.cpu {
		progs[prog] = true
	}
	for prog := range after.cpu {
		progs[prog] = true
	}
	for prog := range progs {
		d := per(prog)
		total += d
		if !slices.Contains(idlePrograms, prog) {
			rest += d
		}
	}
	fmt.Fprintf(out, "metric %sidle.cpu.per-tcp %.2f %%core\n", metric, total)
	for _, prog := range idlePrograms {
		fmt.Fprintf(out, "metric %sidle.cpu.per-tcp.%s %.2f %%core\n", metric, prog, per(prog))
	}
	fmt.Fprintf(out, "metric %sidle.cpu.per-tcp.rest %.2f %%core\n", metric, rest)
	if err := errors.Join(before.storeErr, after.storeErr); err != nil {
		fmt.Fprintf(out, "%sidle: the datastore's counters could not be read: %v\n", metric, err)
		return
	}
	perMin := func(k string) float64 { return 60 * (after.store[k] - before.store[k]) / float64(n) }
	fmt.Fprintf(out, "metric %sidle.datastore.writes.per-tcp %.1f /min\nmetric %sidle.datastore.reads.per-tcp %.1f /min\n",
		metric, perMin(storeCounters[0]), metric, perMin(storeCounters[1]))
}

// readProcCPU reads a process's program (the base name of its first argument) and its user and
// system CPU time so far, in clock ticks.
func readProcCPU(pid int) (procCPU, bool) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return procCPU{}, false
	}
	ticks, ok := statTicks(string(stat))
	if !ok {
		return procCPU{}, false
	}
	return procCPU{prog: procProgram(dir), ticks: ticks}, true
}

// statTicks is utime + stime of a /proc/PID/stat line. The command name, its second field, is
// in parentheses and may hold spaces and parentheses: the fields are counted after its last ')'.
func statTicks(stat string) (int64, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 { // utime and stime are fields 14 and 15: the 12th and 13th after the name
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	return ut + st, err1 == nil && err2 == nil
}

// datastoreCounters reads the shared datastore etcd's counters from its /metrics.
func (p *Plane) datastoreCounters(ctx context.Context) (map[string]float64, error) {
	if err := p.loadStorePKI(); err != nil {
		return nil, err
	}
	c, err := p.storeHTTPClient()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+p.cfg.DataStoreEndpoint()+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if ok && slices.Contains(storeCounters, name) {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				out[name] = f
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) != len(storeCounters) {
		return nil, fmt.Errorf("%s/metrics lacks one of %v", p.cfg.DataStoreEndpoint(), storeCounters)
	}
	return out, nil
}
