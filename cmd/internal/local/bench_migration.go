package local

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// MigrationBenchOptions are the sizes `local bench-migration` measures.
type MigrationBenchOptions struct {
	Objects []int
}

type migrationBenchRow struct {
	objects     int
	from, to    string
	total, copy time.Duration
	frozen      time.Duration
	keys        string
}

// BenchMigration measures, on a running plane with the DataStores etcd-2 and postgresql, for
// each size a tenant holding that many ConfigMaps moved etcd -> etcd (default -> etcd-2) and then
// etcd -> PostgreSQL (etcd-2 -> postgresql): the whole migration, the copy (with its
// verification), the seconds writes were frozen (status freezeStart to freezeEnd), and objects per
// second of the copy. It prints "metric NAME VALUE UNIT" lines and a table.
func BenchMigration(ctx context.Context, cfg Config, o MigrationBenchOptions) error {
	p, err := runningPlane(cfg)
	if err != nil {
		return err
	}
	for _, ds := range []string{DataStoreEtcd2, DataStorePostgreSQL} {
		if err := p.cl.Get(ctx, client.ObjectKey{Name: ds}, &kamajiv1alpha1.DataStore{}); err != nil {
			return fmt.Errorf("DataStore %s (kamaji local up --datastores etcd-2,postgresql): %w", ds, err)
		}
	}
	var rows []migrationBenchRow
	for _, n := range o.Objects {
		name := fmt.Sprintf("bench-mig-%d", n)
		fmt.Fprintf(os.Stderr, "bench: a TenantControlPlane with %d ConfigMaps\n", n)
		if err := p.benchMigrant(ctx, name, n); err != nil {
			return err
		}
		for _, move := range [][2]string{{"default", DataStoreEtcd2}, {DataStoreEtcd2, DataStorePostgreSQL}} {
			fmt.Fprintf(os.Stderr, "bench: %s: %s -> %s\n", name, move[0], move[1])
			row, err := p.benchMove(ctx, name, move[1])
			if err != nil {
				_ = p.deleteTCPNamed(context.Background(), name)
				return fmt.Errorf("%s to %s: %w", name, move[1], err)
			}
			row.objects, row.from = n, move[0]
			rows = append(rows, row)
		}
		if err := p.deleteTCPNamed(ctx, name); err != nil {
			return err
		}
	}
	out := cfg.Out
	kind := func(ds string) string {
		if ds == DataStorePostgreSQL {
			return "postgresql"
		}
		return "etcd"
	}
	for _, r := range rows {
		id := fmt.Sprintf("%s-%s.%d", kind(r.from), kind(r.to), r.objects)
		fmt.Fprintf(out, "metric %s.total %.2f s\n", id, r.total.Seconds())
		fmt.Fprintf(out, "metric %s.frozen %.2f s\n", id, r.frozen.Seconds())
		fmt.Fprintf(out, "metric %s.copy %.2f s\n", id, r.copy.Seconds())
		fmt.Fprintf(out, "metric %s.copy.objects-per-second %.0f obj/s\n", id, float64(r.objects)/max(r.copy.Seconds(), 0.001))
	}
	fmt.Fprintf(out, "A running 1-replica tenant holding N ConfigMaps (and its own objects) moved between DataStores of this plane.\n")
	fmt.Fprintf(out, "total: spec.dataStore changed to Migrated; copy: phase Copying (stream, then read back and compare); frozen: freezeStart to freezeEnd. Aim: frozen < 5 s for 1,000 objects etcd -> etcd.\n")
	fmt.Fprintf(out, "%8s %-12s %-12s %9s %9s %9s %10s  %s\n", "objects", "from", "to", "total", "copy", "frozen", "obj/s", "copied")
	for _, r := range rows {
		fmt.Fprintf(out, "%8d %-12s %-12s %7.1f s %7.2f s %7.1f s %10.0f  %s\n", r.objects, r.from, r.to, r.total.Seconds(), r.copy.Seconds(), r.frozen.Seconds(), float64(r.objects)/max(r.copy.Seconds(), 0.001), r.keys)
	}
	return nil
}

// benchMigrant creates a TCP on the DataStore default and n ConfigMaps in it (16 at a time).
func (p *Plane) benchMigrant(ctx context.Context, name string, n int) error {
	_ = p.deleteTCPNamed(ctx, name)
	if err := p.cl.Create(ctx, SampleTCP(name, "default")); err != nil {
		return err
	}
	if err := p.WaitTCPReady(ctx, "default", name, 4*time.Minute); err != nil {
		return err
	}
	cs, err := p.tenantClient(ctx, name)
	if err != nil {
		return err
	}
	if err := pollReady(ctx, time.Minute, nil, func(ctx context.Context) error {
		_, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("the tenant apiserver does not answer: %w", err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("obj-%05d", i), Namespace: "default"}, Data: map[string]string{"v": strings.Repeat("x", 256)}}
				if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// benchMove changes the TCP's DataStore and follows the migration's phases to Migrated.
func (p *Plane) benchMove(ctx context.Context, name, to string) (migrationBenchRow, error) {
	row := migrationBenchRow{to: to}
	key := client.ObjectKey{Namespace: "default", Name: name}
	start := time.Now()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		tcp := &kamajiv1alpha1.TenantControlPlane{}
		if err := p.cl.Get(ctx, key, tcp); err != nil {
			return err
		}
		tcp.Spec.DataStore = to
		return p.cl.Update(ctx, tcp)
	}); err != nil {
		return row, err
	}
	var copyStart, copyEnd time.Time
	err := pollReady(ctx, 15*time.Minute, nil, func(ctx context.Context) error {
		tcp := &kamajiv1alpha1.TenantControlPlane{}
		if err := p.cl.Get(ctx, key, tcp); err != nil {
			return err
		}
		m := tcp.Status.Storage.Migration
		switch {
		case m == nil && tcp.Status.Storage.DataStoreName == to:
			return nil
		case m == nil:
			return fmt.Errorf("not started")
		case m.Phase == kamajiv1alpha1.MigrationFailed || m.Phase == kamajiv1alpha1.MigrationRollingBack:
			return fmt.Errorf("rolled back: %s", m.Message)
		case m.Phase == kamajiv1alpha1.MigrationCopying && copyStart.IsZero():
			copyStart = time.Now()
		case m.Phase != kamajiv1alpha1.MigrationCopying && !copyStart.IsZero() && copyEnd.IsZero():
			copyEnd = time.Now()
		}
		if m.FreezeStart != nil && m.FreezeEnd != nil {
			row.frozen = m.FreezeEnd.Sub(m.FreezeStart.Time)
		}
		if m.Copied != "" {
			row.keys = m.Copied
		}
		return fmt.Errorf("phase %s", m.Phase)
	})
	if err != nil {
		return row, err
	}
	row.total = time.Since(start)
	if !copyEnd.IsZero() {
		row.copy = copyEnd.Sub(copyStart)
	}
	return row, nil
}
