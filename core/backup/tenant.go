package backup

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	tcpcontroller "github.com/openhcp/kamaji/core/controllers/tenantcontrolplane"
	"github.com/openhcp/kamaji/core/datastores"
	"github.com/openhcp/kamaji/core/kubeversion"
	"github.com/openhcp/kamaji/core/migration"
	"github.com/openhcp/kamaji/core/pluginhost"
)

// Tenants finds a TenantControlPlane's slice in the admin cluster, as the manager does: the
// DataStore's credentials are read here and go to the plugin only.
type Tenants struct {
	// Reader reads TCPs, DataStores, their Secrets, Deployments and Pods (uncached).
	Reader client.Reader
	Host   *pluginhost.Host
}

// Target is a tenant's slice with the objects it was found from.
type Target struct {
	TCP       *kamajiv1alpha1.TenantControlPlane
	DataStore *kamajiv1alpha1.DataStore
	Slice     migration.Slice
}

// Header describes a backup of t taken now.
func (t Target) Header() Header {
	return Header{
		Tenant:            TenantRef{Namespace: t.TCP.Namespace, Name: t.TCP.Name, UID: string(t.TCP.UID)},
		KubernetesVersion: t.TCP.Spec.Kubernetes.Version,
		DataStore:         t.DataStore.Name,
		Driver:            t.DataStore.Spec.Driver,
	}
}

// Find returns the slice the TCP runs on. The driver confirms the slice is the TCP's (it is
// asked for it with the TCP as owner, which provisions nothing new for a running tenant).
func (s Tenants) Find(ctx context.Context, key client.ObjectKey) (Target, error) {
	tcp := &kamajiv1alpha1.TenantControlPlane{}
	if err := s.Reader.Get(ctx, key, tcp); err != nil {
		if apierrors.IsNotFound(err) {
			return Target{}, fmt.Errorf("TenantControlPlane %s not found", key)
		}
		return Target{}, err
	}
	st := tcp.Status.Storage
	switch {
	case tcp.DeletionTimestamp != nil:
		return Target{}, fmt.Errorf("TenantControlPlane %s is being deleted", key)
	case st.Migration != nil && st.Migration.Phase != kamajiv1alpha1.MigrationFailed:
		return Target{}, fmt.Errorf("TenantControlPlane %s is migrating to DataStore %s (phase %s): try again once it is done", key, st.Migration.Target, st.Migration.Phase)
	case len(tcp.Spec.DataStoreOverrides) > 0:
		return Target{}, fmt.Errorf("TenantControlPlane %s keeps part of its data on other DataStores (spec.dataStoreOverrides): backups of such tenants are not supported", key)
	case st.DataStoreName == "":
		return Target{}, fmt.Errorf("TenantControlPlane %s has no datastore slice yet (status.storage.dataStoreName is empty): wait until it is provisioned", key)
	}
	ds := &kamajiv1alpha1.DataStore{}
	if err := s.Reader.Get(ctx, client.ObjectKey{Name: st.DataStoreName}, ds); err != nil {
		return Target{}, fmt.Errorf("DataStore %s of TenantControlPlane %s: %w", st.DataStoreName, key, err)
	}
	cfg, err := datastores.Resolve(ctx, s.Reader, ds)
	if err != nil {
		return Target{}, fmt.Errorf("DataStore %s: %w", ds.Name, err)
	}
	plugin, _, err := s.Host.DataStore(ctx, ds.Spec.Driver)
	if err != nil {
		return Target{}, fmt.Errorf("DataStore %s: %w", ds.Name, err)
	}
	tenant := tcpcontroller.Tenant(tcp)
	conn, err := plugin.EnsureTenant(ctx, cfg, tenant)
	if err != nil {
		return Target{}, fmt.Errorf("the tenant's slice on DataStore %s: %w", ds.Name, err)
	}
	return Target{TCP: tcp, DataStore: ds, Slice: migration.Slice{Plugin: plugin, Config: cfg, Tenant: tenant, Layout: migration.LayoutOf(conn)}}, nil
}

// Stopped returns an error unless the TCP's control plane is scaled to zero with no pod left:
// a restore must not race an apiserver writing into the slice.
func (s Tenants) Stopped(ctx context.Context, tcp *kamajiv1alpha1.TenantControlPlane) error {
	name := client.ObjectKeyFromObject(tcp)
	var d appsv1.Deployment
	err := s.Reader.Get(ctx, name, &d)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return err
	case d.Spec.Replicas == nil || *d.Spec.Replicas != 0:
		return fmt.Errorf("TenantControlPlane %s runs its control plane: create it with spec.controlPlane.deployment.replicas: 0, or scale it to zero (kubectl kamaji sleep %s), before restoring", name, tcp.Name)
	}
	var pods corev1.PodList
	if err := s.Reader.List(ctx, &pods, client.InNamespace(tcp.Namespace), client.MatchingLabels{kamajiv1alpha1.NameLabel: tcp.Name}); err != nil {
		return err
	}
	var left []string
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			left = append(left, p.Name)
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("TenantControlPlane %s still has control-plane pods (%s): wait until they are gone", name, strings.Join(left, ", "))
	}
	return nil
}

// Compatible returns an error when a backup taken at h's version cannot be served by the
// TCP's: an apiserver reads what an older one wrote, not what a newer one did.
func Compatible(h Header, tcp *kamajiv1alpha1.TenantControlPlane) error {
	from, ok := kubeversion.Minor(h.KubernetesVersion)
	if !ok {
		return nil // an archive without a version (or a third party's): the apiserver decides
	}
	to, ok := kubeversion.Minor(tcp.Spec.Kubernetes.Version)
	if ok && to < from {
		return fmt.Errorf("the backup was taken at Kubernetes %s and TenantControlPlane %s/%s runs %s: restore it into a TenantControlPlane at v1.%d or later", h.KubernetesVersion, tcp.Namespace, tcp.Name, tcp.Spec.Kubernetes.Version, from)
	}
	return nil
}

// BackupTo writes an archive of the TCP's slice to w.
func (s Tenants) BackupTo(ctx context.Context, key client.ObjectKey, w io.Writer, producer string) (Header, migration.Digest, error) {
	t, err := s.Find(ctx, key)
	if err != nil {
		return Header{}, migration.Digest{}, err
	}
	h := t.Header()
	h.Created = time.Now().UTC().Truncate(time.Second)
	h.Producer = producer
	d, err := Backup(ctx, t.Slice, w, h)
	return h, d, err
}

// RestoreFrom writes the archive at path into the TCP's slice: the archive is checked whole
// first, then the TCP (scaled to zero, an empty slice, a version that reads the archive's
// objects), then the keys are written and read back.
func (s Tenants) RestoreFrom(ctx context.Context, key client.ObjectKey, path string) (Header, migration.Digest, error) {
	open := func() (*os.File, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("the archive: %w", err)
		}
		return f, nil
	}
	h, _, err := VerifyFile(path)
	if err != nil {
		return h, migration.Digest{}, err
	}
	t, err := s.Find(ctx, key)
	if err != nil {
		return h, migration.Digest{}, err
	}
	if err := Compatible(h, t.TCP); err != nil {
		return h, migration.Digest{}, err
	}
	if err := s.Stopped(ctx, t.TCP); err != nil {
		return h, migration.Digest{}, err
	}
	f, err := open()
	if err != nil {
		return h, migration.Digest{}, err
	}
	defer f.Close()
	ar, err := NewReader(f)
	if err != nil {
		return h, migration.Digest{}, fmt.Errorf("%s: %w", path, err)
	}
	d, err := Restore(ctx, ar, t.Slice)
	return h, d, err
}
