package metrics

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
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
	reader atomic.Pointer[client.Reader]
	certs  certCache
}

var state = &stateCollector{}

// ReadFrom makes the state metrics read from r, the manager's cache; until it is called they
// are not exported.
func ReadFrom(r client.Reader) { state.reader.Store(&r) }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{tcpInfo, tcpStatus, tcpCurrent, dsInfo, dsStatus, dsCurrent, dsTenants, certsCurrent, certExpiry} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	rp := c.reader.Load()
	if rp == nil {
		return
	}
	r := *rp
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	logger := log.Log.WithName("metrics")

	var tcps kamajiv1alpha1.TenantControlPlaneList
	if err := r.List(ctx, &tcps, client.UnsafeDisableDeepCopy); err != nil {
		logger.Info("TenantControlPlane metrics not collected", "error", err.Error())
	} else {
		collectTenantControlPlanes(ch, tcps.Items)
		var secrets corev1.SecretList
		if err := r.List(ctx, &secrets, client.UnsafeDisableDeepCopy); err != nil {
			logger.Info("certificate metrics not collected", "error", err.Error())
		} else {
			c.certs.collect(ch, tcps.Items, secrets.Items)
		}
	}

	var dss kamajiv1alpha1.DataStoreList
	if err := r.List(ctx, &dss, client.UnsafeDisableDeepCopy); err != nil {
		logger.Info("DataStore metrics not collected", "error", err.Error())
	} else {
		collectDataStores(ch, dss.Items)
	}
}

func collectTenantControlPlanes(ch chan<- prometheus.Metric, tcps []kamajiv1alpha1.TenantControlPlane) {
	ch <- prometheus.MustNewConstMetric(tcpCurrent, prometheus.GaugeValue, float64(len(tcps)))
	for i := range tcps {
		tcp := &tcps[i]
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

func collectDataStores(ch chan<- prometheus.Metric, dss []kamajiv1alpha1.DataStore) {
	ch <- prometheus.MustNewConstMetric(dsCurrent, prometheus.GaugeValue, float64(len(dss)))
	for i := range dss {
		ds := &dss[i]
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
