package tenantcontrolplane

import (
	"context"
	"encoding/json"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/controlplane"
)

// ReasonWaitingForDataStore: the Deployment cannot be built, the datastore step gave no
// connection and no earlier Deployment recorded one.
const ReasonWaitingForDataStore = "WaitingForDataStore"

// StorageAnnotation records on the Deployment the storage it was built with (JSON), so that a
// pass whose datastore step failed builds the same storage into it while the rest of the spec
// (certificates, arguments, version) still converges.
const StorageAnnotation = "kamaji.clastix.io/storage"

// storageRecord is the Deployment builder's storage input. It holds no secret: credentials and
// files are in the storage Secret it names.
type storageRecord struct {
	Secret    string                    `json:"secret"`
	Etcd      *controlplane.EtcdStorage `json:"etcd,omitempty"`
	Overrides []string                  `json:"etcdServersOverrides,omitempty"`
	Kine      *controlplane.KineStorage `json:"kine,omitempty"`
}

// deploymentStorage is the storage of the Deployment: from the datastore's answer in this pass,
// or else (the datastore step failed) as the Deployment last recorded it, with the storage
// Secret as it is (its data is in the pods' checksum, which must not change for nothing).
func deploymentStorage(ctx context.Context, r *Reconciler, p *pass) (storageRecord, error) {
	const cond = kamajiv1alpha1.ConditionControlPlaneAvailable
	switch {
	case p.conn.Etcd != nil:
		return storageRecord{
			Secret: p.storageSecret, Overrides: p.overrideServers,
			Etcd: &controlplane.EtcdStorage{Servers: p.conn.Etcd.Servers, Prefix: p.conn.Etcd.Prefix, CertSecret: p.storageSecret},
		}, nil
	case p.conn.Kine != nil:
		ks, err := kineStorage(r, p)
		if err != nil {
			return storageRecord{}, fail(kamajiv1alpha1.ConditionDataStoreReady, ReasonUnsupportedConnection, err)
		}
		return storageRecord{Secret: p.storageSecret, Kine: ks}, nil
	}
	missing := failf(cond, ReasonWaitingForDataStore,
		"the control-plane Deployment needs the tenant's datastore connection: the datastore did not give it (see DataStoreReady) and no earlier Deployment %s recorded it", p.tcp.Name)
	dep := &appsv1.Deployment{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: p.tcp.Namespace, Name: p.tcp.Name}, dep); err != nil {
		if apierrors.IsNotFound(err) {
			return storageRecord{}, missing
		}
		return storageRecord{}, fail(cond, ReasonDeploymentFailed, err)
	}
	raw, ok := dep.Annotations[StorageAnnotation]
	if !ok {
		return storageRecord{}, missing
	}
	var rec storageRecord
	if err := json.Unmarshal([]byte(raw), &rec); err != nil || rec.Secret == "" || (rec.Etcd == nil) == (rec.Kine == nil) {
		return storageRecord{}, failf(cond, ReasonDeploymentFailed, "Deployment %s: annotation %s is not a storage record (%v); the datastore must answer to rebuild it", dep.Name, StorageAnnotation, err)
	}
	if _, ok := p.secrets[rec.Secret]; !ok {
		cur, err := r.readSecret(ctx, p, rec.Secret)
		if err != nil {
			return storageRecord{}, fail(cond, ReasonDeploymentFailed, err)
		}
		if cur.obj == nil {
			return storageRecord{}, failf(cond, ReasonWaitingForDataStore,
				"the datastore Secret %s is gone, and the datastore, which gives what it holds, did not answer (see DataStoreReady)", rec.Secret)
		}
		p.addSecret(rec.Secret, cur.data)
	}
	p.storageSecret = rec.Secret
	return rec, nil
}

// recordStorage writes the storage record on the Deployment about to be applied.
func recordStorage(dep *appsv1.Deployment, rec storageRecord) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if dep.Annotations == nil {
		dep.Annotations = map[string]string{}
	}
	dep.Annotations[StorageAnnotation] = string(raw)
	return nil
}
