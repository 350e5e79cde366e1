package metrics

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// scrapeTimeout bounds the cache reads of one scrape (they only wait when an informer is not
// synced yet, as on a replica that is not the leader at its first scrape).
const scrapeTimeout = 5 * time.Second

// TenantControlPlaneStatuses are the values of kamaji_tenant_control_plane_status' status label:
// Kamaji's status.kubernetesResources.version.status enum.
var TenantControlPlaneStatuses = []kamajiv1alpha1.KubernetesVersionStatus{
	kamajiv1alpha1.VersionProvisioning, kamajiv1alpha1.VersionCertificateAuthorityRotating, kamajiv1alpha1.VersionUpgrading,
	kamajiv1alpha1.VersionMigrating, kamajiv1alpha1.VersionReady, kamajiv1alpha1.VersionNotReady,
	kamajiv1alpha1.VersionSleeping, kamajiv1alpha1.VersionWriteLimited, kamajiv1alpha1.VersionUnknown,
}

// DataStore statuses, the values of kamaji_datastore_status' status label.
const (
	DataStoreReady    = "Ready"
	DataStoreNotReady = "NotReady"
)

var (
	tcpInfo = prometheus.NewDesc("kamaji_tenant_control_plane_info",
		"Always 1 for each TenantControlPlane: its wanted Kubernetes version (spec), the installed one (status), its DataStore and driver.",
		[]string{"namespace", "name", "version", "installed_version", "datastore", "driver"}, nil)
	tcpStatus = prometheus.NewDesc("kamaji_tenant_control_plane_status",
		"1 for the TenantControlPlane's current status (status.kubernetesResources.version.status; Unknown before the first reconcile), 0 for every other value.",
		[]string{"namespace", "name", "status"}, nil)
	tcpCurrent = prometheus.NewDesc("kamaji_tenant_control_planes_current",
		"Number of TenantControlPlanes in the admin cluster.", nil, nil)
	dsInfo = prometheus.NewDesc("kamaji_datastore_info",
		"Always 1 for each DataStore: its name and driver.", []string{"name", "driver"}, nil)
	dsStatus = prometheus.NewDesc("kamaji_datastore_status",
		"1 for the DataStore's current status (Ready when its Ready condition is True, else NotReady), 0 for the other.",
		[]string{"name", "status"}, nil)
	dsCurrent = prometheus.NewDesc("kamaji_datastores_current",
		"Number of DataStores in the admin cluster.", nil, nil)
	dsTenants = prometheus.NewDesc("kamaji_datastore_tenant_control_planes",
		"Number of TenantControlPlanes using the DataStore (status.usedBy).", []string{"name"}, nil)
)

// stateCollector reads the TenantControlPlanes, DataStores and certificate Secrets from the
// manager's informer cache at each scrape: no API call, and no series left behind by a
// deleted object.
type stateCollector struct {
	informers atomic.Pointer[cache.Informers]
	certs     certCache
}

var state = &stateCollector{}

// ReadFrom makes the state metrics read from c, the manager's cache; until it is called they
// are not exported.
func ReadFrom(c cache.Informers) { state.informers.Store(&c) }

// storeOf returns the informer store that holds obj's kind, to read in place: a List would
// copy every object of the kind (the 10,000 Secrets of 1,000 TCPs) at each scrape. Like a
// List, it waits for the informer's first sync (until ctx ends) and fails before it.
func storeOf(ctx context.Context, c cache.Informers, obj client.Object) (toolscache.Store, error) {
	inf, err := c.GetInformer(ctx, obj)
	if err != nil {
		return nil, err
	}
	if !inf.HasSynced() {
		return nil, errors.New("the cache has not synced")
	}
	s, ok := inf.(interface{ GetStore() toolscache.Store })
	if !ok {
		return nil, fmt.Errorf("the %T informer has no store", inf)
	}
	return s.GetStore(), nil
}

// objects lists a store's objects of type T (the store holds nothing else).
func objects[T any](s toolscache.Store) []*T {
	items := s.List()
	out := make([]*T, 0, len(items))
	for _, o := range items {
		if t, ok := o.(*T); ok {
			out = append(out, t)
		}
	}
	return out
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{tcpInfo, tcpStatus, tcpCurrent, dsInfo, dsStatus, dsCurrent, dsTenants, certsCurrent, certExpiryDesc} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ip := c.informers.Load()
	if ip == nil {
		return
	}
	informers := *ip
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	logger := log.Log.WithName("metrics")

	// The stores' objects are the cache's own: read, never changed.
	if tcpStore, err := storeOf(ctx, informers, &kamajiv1alpha1.TenantControlPlane{}); err != nil {
		logger.Info("TenantControlPlane metrics not collected", "error", err.Error())
	} else {
		tcps := objects[kamajiv1alpha1.TenantControlPlane](tcpStore)
		collectTenantControlPlanes(ch, tcps)
		if secrets, err := storeOf(ctx, informers, &corev1.Secret{}); err != nil {
			logger.Info("certificate metrics not collected", "error", err.Error())
		} else {
			c.certs.collect(ch, tcps, secrets)
		}
	}

	if dsStore, err := storeOf(ctx, informers, &kamajiv1alpha1.DataStore{}); err != nil {
		logger.Info("DataStore metrics not collected", "error", err.Error())
	} else {
		collectDataStores(ch, objects[kamajiv1alpha1.DataStore](dsStore))
	}
}

func collectTenantControlPlanes(ch chan<- prometheus.Metric, tcps []*kamajiv1alpha1.TenantControlPlane) {
	ch <- prometheus.MustNewConstMetric(tcpCurrent, prometheus.GaugeValue, float64(len(tcps)))
	for _, tcp := range tcps {
		st := tcp.Status
		ds := st.Storage.DataStoreName
		if ds == "" {
			ds = tcp.Spec.DataStore
		}
		ch <- prometheus.MustNewConstMetric(tcpInfo, prometheus.GaugeValue, 1,
			tcp.Namespace, tcp.Name, tcp.Spec.Kubernetes.Version, st.Kubernetes.Version.Version, ds, st.Storage.Driver)
		current := kamajiv1alpha1.VersionUnknown
		if s := st.Kubernetes.Version.Status; s != nil && *s != "" {
			current = *s
		}
		for _, s := range TenantControlPlaneStatuses {
			ch <- prometheus.MustNewConstMetric(tcpStatus, prometheus.GaugeValue, boolValue(s == current), tcp.Namespace, tcp.Name, string(s))
		}
	}
}

func collectDataStores(ch chan<- prometheus.Metric, dss []*kamajiv1alpha1.DataStore) {
	ch <- prometheus.MustNewConstMetric(dsCurrent, prometheus.GaugeValue, float64(len(dss)))
	for _, ds := range dss {
		ch <- prometheus.MustNewConstMetric(dsInfo, prometheus.GaugeValue, 1, ds.Name, ds.Spec.Driver)
		ready := meta.IsStatusConditionTrue(ds.Status.Conditions, "Ready")
		ch <- prometheus.MustNewConstMetric(dsStatus, prometheus.GaugeValue, boolValue(ready), ds.Name, DataStoreReady)
		ch <- prometheus.MustNewConstMetric(dsStatus, prometheus.GaugeValue, boolValue(!ready), ds.Name, DataStoreNotReady)
		ch <- prometheus.MustNewConstMetric(dsTenants, prometheus.GaugeValue, float64(len(ds.Status.UsedBy)), ds.Name)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
