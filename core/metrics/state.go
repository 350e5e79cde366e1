package metrics

import (
	"context"
	"io"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/cachestore"
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
	tcpInfo = gaugeFamily{"kamaji_tenant_control_plane_info",
		"Always 1 for each TenantControlPlane: its wanted Kubernetes version (spec), the installed one (status), its DataStore and driver.",
		[]string{"namespace", "name", "version", "installed_version", "datastore", "driver"}}
	tcpStatus = gaugeFamily{"kamaji_tenant_control_plane_status",
		"1 for the TenantControlPlane's current status (status.kubernetesResources.version.status; Unknown before the first reconcile), 0 for every other value.",
		[]string{"namespace", "name", "status"}}
	tcpCurrent = gaugeFamily{"kamaji_tenant_control_planes_current",
		"Number of TenantControlPlanes in the admin cluster.", nil}
	dsInfo = gaugeFamily{"kamaji_datastore_info",
		"Always 1 for each DataStore: its name and driver.", []string{"name", "driver"}}
	dsStatus = gaugeFamily{"kamaji_datastore_status",
		"1 for the DataStore's current status (Ready when its Ready condition is True, else NotReady), 0 for the other.",
		[]string{"name", "status"}}
	dsCurrent = gaugeFamily{"kamaji_datastores_current",
		"Number of DataStores in the admin cluster.", nil}
	dsTenants = gaugeFamily{"kamaji_datastore_tenant_control_planes",
		"Number of TenantControlPlanes using the DataStore (status.usedBy).", []string{"name"}}
)

// stateFamilies are the families WithState writes.
var stateFamilies = []gaugeFamily{tcpInfo, tcpStatus, tcpCurrent, dsInfo, dsStatus, dsCurrent, dsTenants, certsCurrent, certExpiryFamily}

// stateCollector reads the TenantControlPlanes, DataStores and certificate Secrets from the
// manager's informer cache at each scrape (WithState): no API call, and no series left behind
// by a deleted object.
type stateCollector struct {
	informers atomic.Pointer[cache.Informers]
	certs     certCache
}

var state = &stateCollector{}

// ReadFrom makes the state metrics read from c, the manager's cache; until it is called they
// are not exported.
func ReadFrom(c cache.Informers) { state.informers.Store(&c) }

// write writes the state families to w, from the cache's stores read in place (never changed).
func (c *stateCollector) write(ctx context.Context, w io.Writer) {
	ip := c.informers.Load()
	if ip == nil {
		return
	}
	informers := *ip
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	logger := log.Log.WithName("metrics")
	t := newTextWriter(w)
	defer func() { _ = t.flush() }()

	if tcpStore, err := cachestore.Store(ctx, informers, &kamajiv1alpha1.TenantControlPlane{}); err != nil {
		logger.Info("TenantControlPlane metrics not collected", "error", err.Error())
	} else {
		tcps := cachestore.Objects[kamajiv1alpha1.TenantControlPlane](tcpStore)
		writeTenantControlPlanes(t, tcps)
		if secrets, err := cachestore.Store(ctx, informers, &corev1.Secret{}); err != nil {
			logger.Info("certificate metrics not collected", "error", err.Error())
		} else {
			c.certs.write(t, tcps, secrets)
		}
	}

	if dsStore, err := cachestore.Store(ctx, informers, &kamajiv1alpha1.DataStore{}); err != nil {
		logger.Info("DataStore metrics not collected", "error", err.Error())
	} else {
		writeDataStores(t, cachestore.Objects[kamajiv1alpha1.DataStore](dsStore))
	}
}

func writeTenantControlPlanes(t *textWriter, tcps []*kamajiv1alpha1.TenantControlPlane) {
	t.family(tcpCurrent)
	t.sample(tcpCurrent, float64(len(tcps)))
	t.family(tcpInfo)
	for _, tcp := range tcps {
		st := tcp.Status
		ds := st.Storage.DataStoreName
		if ds == "" {
			ds = tcp.Spec.DataStore
		}
		t.sample(tcpInfo, 1, tcp.Namespace, tcp.Name, tcp.Spec.Kubernetes.Version, st.Kubernetes.Version.Version, ds, st.Storage.Driver)
	}
	t.family(tcpStatus)
	for _, tcp := range tcps {
		current := kamajiv1alpha1.VersionUnknown
		if s := tcp.Status.Kubernetes.Version.Status; s != nil && *s != "" {
			current = *s
		}
		for _, s := range TenantControlPlaneStatuses {
			t.sample(tcpStatus, boolValue(s == current), tcp.Namespace, tcp.Name, string(s))
		}
	}
}

func writeDataStores(t *textWriter, dss []*kamajiv1alpha1.DataStore) {
	t.family(dsCurrent)
	t.sample(dsCurrent, float64(len(dss)))
	if len(dss) == 0 {
		return
	}
	// A family's series follow its header: one pass per family.
	t.family(dsInfo)
	for _, ds := range dss {
		t.sample(dsInfo, 1, ds.Name, ds.Spec.Driver)
	}
	t.family(dsStatus)
	for _, ds := range dss {
		ready := meta.IsStatusConditionTrue(ds.Status.Conditions, "Ready")
		t.sample(dsStatus, boolValue(ready), ds.Name, DataStoreReady)
		t.sample(dsStatus, boolValue(!ready), ds.Name, DataStoreNotReady)
	}
	t.family(dsTenants)
	for _, ds := range dss {
		t.sample(dsTenants, float64(len(ds.Status.UsedBy)), ds.Name)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
