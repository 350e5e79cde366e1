package local

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/datastores"
	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// KineBenchOptions sizes BenchKine.
type KineBenchOptions struct {
	// Creates is the number of ConfigMaps created, one after another, per tenant (1000).
	Creates int
	// Ensures is the number of tenants EnsureTenant creates per driver (20).
	Ensures int
}

// kineBenchRow is one driver's figures.
type kineBenchRow struct {
	name                    string // DataStore: etcd (the DataStore "default"), mysql...
	driver                  string
	ensureNew, ensureAgain  time.Duration
	ready                   time.Duration
	createP50, createP99    time.Duration
	createMean, createTotal time.Duration
}

// BenchKine measures, on a running plane with its kine DataStores, for each driver in the same
// run with the etcd DataStore "default" as the baseline: EnsureTenant through the driver's
// plugin binary (p50 of new tenants, and of the same call again), the time from applying a
// TenantControlPlane to it being Ready, and p50/p99 of ConfigMap creates, one after another,
// through the tenant's apiserver (its Service, from the host). It prints "metric NAME VALUE
// UNIT" lines (hack/bench.sh's format) and a table.
func BenchKine(ctx context.Context, cfg Config, o KineBenchOptions) error {
	p, err := runningPlane(cfg)
	if err != nil {
		return err
	}
	plugins, err := p.configuredPlugins()
	if err != nil {
		return err
	}
	stores := []struct{ ds, name string }{{"default", DataStoreEtcd}, {DataStoreMySQL, DataStoreMySQL}, {DataStorePostgreSQL, DataStorePostgreSQL}, {DataStoreNATS, DataStoreNATS}}
	var rows []kineBenchRow
	for _, s := range stores {
		ds := &kamajiv1alpha1.DataStore{}
		if err := p.cl.Get(ctx, client.ObjectKey{Name: s.ds}, ds); err != nil {
			if apierrors.IsNotFound(err) && s.name != DataStoreEtcd {
				fmt.Fprintf(cfg.Out, "%s: no DataStore %s on this plane (kamaji local up --datastores %s): skipped\n", s.name, s.ds, s.name)
				continue
			}
			return err
		}
		if !meta.IsStatusConditionTrue(ds.Status.Conditions, "Ready") {
			return fmt.Errorf("DataStore %s is not Ready: %v", s.ds, ds.Status.Conditions)
		}
		i := slices.IndexFunc(plugins, func(pl settings.Plugin) bool { return slices.Contains(pl.Drivers, ds.Spec.Driver) })
		if i < 0 {
			return fmt.Errorf("no plugin serves driver %s in %s", ds.Spec.Driver, p.cfg.path("kamaji.yaml"))
		}
		row := kineBenchRow{name: s.name, driver: ds.Spec.Driver}
		fmt.Fprintf(os.Stderr, "bench: %s: EnsureTenant x%d\n", s.name, o.Ensures)
		if row.ensureNew, row.ensureAgain, err = p.benchEnsure(ctx, ds, plugins[i], s.name, o.Ensures); err != nil {
			return fmt.Errorf("%s: EnsureTenant: %w", s.name, err)
		}
		fmt.Fprintf(os.Stderr, "bench: %s: a TenantControlPlane to Ready, then %d ConfigMap creates\n", s.name, o.Creates)
		if err := p.benchTenant(ctx, s.ds, "bench-kine-"+s.name, o.Creates, &row); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		rows = append(rows, row)
	}
	out := cfg.Out
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var base *kineBenchRow
	for i, r := range rows {
		if r.name == DataStoreEtcd {
			base = &rows[i]
		}
		fmt.Fprintf(out, "metric %s.ensure-tenant.p50 %.2f ms\n", r.name, ms(r.ensureNew))
		fmt.Fprintf(out, "metric %s.ensure-tenant.existing.p50 %.2f ms\n", r.name, ms(r.ensureAgain))
		fmt.Fprintf(out, "metric %s.tcp-ready %.2f s\n", r.name, r.ready.Seconds())
		fmt.Fprintf(out, "metric %s.configmap-create.p50 %.2f ms\n", r.name, ms(r.createP50))
		fmt.Fprintf(out, "metric %s.configmap-create.p99 %.2f ms\n", r.name, ms(r.createP99))
		if base != nil && r.name != DataStoreEtcd {
			fmt.Fprintf(out, "metric %s.configmap-create.p50.vs-etcd %.2f x\n", r.name, ratio(r.createP50, base.createP50))
		}
	}
	fmt.Fprintf(out, "Per driver, same run; baseline: the etcd DataStore (no kine). kine %s sidecars.\n", KineVersion)
	fmt.Fprintf(out, "EnsureTenant: p50 of %d new tenants through the driver's plugin binary (existing: the same call again).\n", o.Ensures)
	fmt.Fprintf(out, "Ready: apply of a 1-replica TenantControlPlane to status Ready. Creates: %d ConfigMaps one after another, from the host through the tenant's Service.\n", o.Creates)
	fmt.Fprintf(out, "%-11s %-11s %12s %12s %9s %11s %11s %12s %12s\n", "datastore", "driver", "ensure p50", "ensure again", "ready", "create p50", "create p99", "p50 vs etcd", "p99 vs etcd")
	for _, r := range rows {
		vs50, vs99 := "-", "-"
		if base != nil && r.name != DataStoreEtcd {
			vs50 = fmt.Sprintf("%.2fx", ratio(r.createP50, base.createP50))
			vs99 = fmt.Sprintf("%.2fx", ratio(r.createP99, base.createP99))
		}
		fmt.Fprintf(out, "%-11s %-11s %9.2f ms %9.2f ms %7.1f s %8.2f ms %8.2f ms %12s %12s\n",
			r.name, r.driver, ms(r.ensureNew), ms(r.ensureAgain), r.ready.Seconds(), ms(r.createP50), ms(r.createP99), vs50, vs99)
	}
	return nil
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// configuredPlugins are the plugins of the plane's kamaji.yaml.
func (p *Plane) configuredPlugins() ([]settings.Plugin, error) {
	data, err := os.ReadFile(p.cfg.path("kamaji.yaml"))
	if err != nil {
		return nil, err
	}
	var conf struct {
		Plugins []settings.Plugin `json:"plugins"`
	}
	if err := yaml.Unmarshal(data, &conf); err != nil {
		return nil, err
	}
	return conf.Plugins, nil
}

// benchEnsure starts the DataStore's plugin binary as the core does and times EnsureTenant for
// n new tenants, then the same call on each again; the tenants are deleted afterwards.
func (p *Plane) benchEnsure(ctx context.Context, ds *kamajiv1alpha1.DataStore, pl settings.Plugin, name string, n int) (time.Duration, time.Duration, error) {
	cfg, err := datastores.Resolve(ctx, p.cl, ds)
	if err != nil {
		return 0, 0, err
	}
	c, err := datastore.NewClient(sdk.ClientConfig{Path: pl.Path, Args: pl.Args, SHA256: pl.SHA256})
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	run := randomHex(3)
	tenants := make([]datastore.Tenant, n)
	for i := range tenants {
		id := fmt.Sprintf("bench_%s_%s_%02d", name, run, i)
		tenants[i] = datastore.Tenant{Namespace: "kamaji-bench", Name: strings.ReplaceAll(id, "_", "-"), Schema: id, Username: id}
	}
	defer func() {
		for _, t := range tenants {
			dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_ = c.DeleteTenant(dctx, cfg, t)
			cancel()
		}
	}()
	var first, again []time.Duration
	for _, pass := range []*[]time.Duration{&first, &again} {
		for _, t := range tenants {
			start := time.Now()
			if _, err := c.EnsureTenant(ctx, cfg, t); err != nil {
				return 0, 0, err
			}
			*pass = append(*pass, time.Since(start))
		}
	}
	return percentile(first, 50), percentile(again, 50), nil
}

// benchTenant applies a TCP on the DataStore, times it to Ready, creates n ConfigMaps through
// its apiserver one after another, and deletes it.
func (p *Plane) benchTenant(ctx context.Context, ds, name string, n int, row *kineBenchRow) error {
	tcp := SampleTCP(name, "default")
	tcp.Spec.DataStore = ds
	start := time.Now()
	if err := p.cl.Create(ctx, tcp); err != nil {
		return err
	}
	defer func() { _ = p.deleteTCPNamed(context.Background(), name) }()
	if err := p.WaitTCPReady(ctx, "default", name, 4*time.Minute); err != nil {
		return err
	}
	row.ready = time.Since(start)
	cs, err := p.tenantClient(ctx, name)
	if err != nil {
		return err
	}
	// Until the Service answers, then a warm-up the measure leaves out.
	err = pollReady(ctx, time.Minute, nil, func(ctx context.Context) error {
		_, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("the tenant apiserver does not answer: %w", err)
	}
	for i := range 20 {
		if err := createConfigMap(ctx, cs, fmt.Sprintf("warm-%04d", i)); err != nil {
			return err
		}
	}
	lat := make([]time.Duration, 0, n)
	total := time.Now()
	for i := range n {
		s := time.Now()
		if err := createConfigMap(ctx, cs, fmt.Sprintf("bench-%04d", i)); err != nil {
			return fmt.Errorf("ConfigMap %d: %w", i, err)
		}
		lat = append(lat, time.Since(s))
	}
	row.createTotal = time.Since(total)
	row.createMean = row.createTotal / time.Duration(max(n, 1))
	row.createP50, row.createP99 = percentile(lat, 50), percentile(lat, 99)
	return nil
}

func createConfigMap(ctx context.Context, cs kubernetes.Interface, name string) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Data: map[string]string{"key": strings.Repeat("v", 64)}}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := cs.CoreV1().ConfigMaps("default").Create(cctx, cm, metav1.CreateOptions{})
	return err
}

// tenantClient is a client of the tenant's apiserver with its super-admin credentials, through
// its Service, without client-side rate limiting.
func (p *Plane) tenantClient(ctx context.Context, name string) (kubernetes.Interface, error) {
	rc, err := p.tenantRESTConfig(ctx, name)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rc)
}

// deleteTCPNamed deletes a TCP of the namespace default and waits until its pods are gone.
func (p *Plane) deleteTCPNamed(ctx context.Context, name string) error {
	tcp := &kamajiv1alpha1.TenantControlPlane{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
	if err := p.cl.Delete(ctx, tcp); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return pollReady(ctx, 3*time.Minute, nil, func(ctx context.Context) error {
		err := p.cl.Get(ctx, client.ObjectKeyFromObject(tcp), &kamajiv1alpha1.TenantControlPlane{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("TCP %s still there: %v", name, err)
		}
		pods, err := p.cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "kamaji.clastix.io/name=" + name})
		if err != nil {
			return err
		}
		if len(pods.Items) > 0 {
			return fmt.Errorf("%d pods of %s left", len(pods.Items), name)
		}
		return nil
	})
}
