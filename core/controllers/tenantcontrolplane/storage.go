package tenantcontrolplane

import (
	"context"
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
	"github.com/openhcp/kamaji/core/controlplane"
	"github.com/openhcp/kamaji/core/pki"
	"github.com/openhcp/kamaji/core/tenantpki"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// DataStoreConfigSecretName holds a kine sidecar's credentials and files.
func DataStoreConfigSecretName(tcp string) string { return tcp + "-datastore-config" }

// ensureStorageSecret writes what the apiserver (or its kine sidecar) needs to reach the
// tenant's data: for etcd, a client certificate signed by the DataStore's CA with the subject
// the plugin asked for; for kine, the secret environment and files of the sidecar.
func ensureStorageSecret(ctx context.Context, r *Reconciler, p *pass) error {
	const cond = kamajiv1alpha1.ConditionDataStoreReady
	st := &p.status.Storage
	switch {
	case p.conn.Etcd != nil:
		name := tenantpki.SecretName(p.tcp.Name, tenantpki.Datastore)
		cur, err := r.readSecret(ctx, p, name)
		if err != nil {
			return fail(cond, ReasonProvisioningFailed, err)
		}
		dsCA, err := pki.ParseKeyPair(p.dsConfig.CACert, p.dsConfig.CAKey)
		if err != nil {
			return failf(cond, ReasonDataStoreInvalid, "DataStore %s: the CA certificate and key (spec.tlsConfig.certificateAuthority) are unusable: %v", p.dataStore.Name, err)
		}
		// A DataStore CA given as a bundle (a new CA, then the one its etcd's serving
		// certificates still chain to) is trusted whole by the tenant's apiserver.
		if certs, err := pki.ParseCerts(p.dsConfig.CACert); err == nil && len(certs) > 1 {
			dsCA.Trust = p.dsConfig.CACert
		}
		opts := tenantpki.Options{RenewBefore: r.Options.CertificateExpirationDeadline, Force: cur.rotate}
		req := p.conn.Etcd.ClientCertificate
		data, reason, err := tenantpki.EnsureDatastoreClient(cur.data, dsCA, req.CommonName, req.Organizations, opts, clock(r.now))
		if err != nil {
			return fail(cond, ReasonProvisioningFailed, fmt.Errorf("%s: %w", name, err))
		}
		if err := r.writeSecret(ctx, p, cur, data, reason); err != nil {
			return fail(cond, ReasonProvisioningFailed, err)
		}
		p.storageSecret = name
		sum := tenantpki.Checksum(p.secrets[name])
		if st.Certificate.Checksum != sum {
			st.Certificate.LastUpdate = metav1.NewTime(p.now)
		}
		st.Certificate.SecretName, st.Certificate.Checksum = name, sum
		if p.status.Certificates.ETCD == nil {
			p.status.Certificates.ETCD = &kamajiv1alpha1.ETCDCertificatesStatus{}
		}
		p.status.Certificates.ETCD.APIServer = kamajiv1alpha1.CertificatePrivateKeyPairStatus{SecretName: name, Checksum: sum, LastUpdate: st.Certificate.LastUpdate}
	case p.conn.Kine != nil:
		name := DataStoreConfigSecretName(p.tcp.Name)
		cur, err := r.readSecret(ctx, p, name)
		if err != nil {
			return fail(cond, ReasonProvisioningFailed, err)
		}
		data, err := kineSecretData(p.conn.Kine)
		if err != nil {
			return fail(cond, ReasonUnsupportedConnection, err)
		}
		reason := tenantpki.Unchanged
		if tenantpki.Checksum(cur.data) != tenantpki.Checksum(data) {
			reason = tenantpki.Repaired
		}
		if err := r.writeSecret(ctx, p, cur, data, reason); err != nil {
			return fail(cond, ReasonProvisioningFailed, err)
		}
		p.storageSecret = name
		sum := tenantpki.Checksum(p.secrets[name])
		if st.Config.Checksum != sum {
			st.Config.LastUpdate = metav1.NewTime(p.now)
		}
		st.Config.SecretName, st.Config.Checksum = name, sum
	default:
		return failf(cond, ReasonUnsupportedConnection, "the %s plugin returned no connection (neither etcd nor kine)", p.dataStore.Spec.Driver)
	}
	return nil
}

// KineFilesPath is where a kine sidecar's files are mounted; plugins place them under it.
const KineFilesPath = controlplane.DefaultKineFilesPath

func kineFileKey(i int) string { return fmt.Sprintf("file-%d", i) }

// kineSecretData stores the sidecar's secret environment values ("env-<NAME>") and every file
// ("file-<i>", mounted at its path under KineFilesPath).
func kineSecretData(k *datastore.KineSidecar) (map[string][]byte, error) {
	data := map[string][]byte{}
	for _, e := range k.Env {
		if e.Secret {
			data["env-"+e.Name] = []byte(e.Value)
		}
	}
	for i, f := range k.Files {
		if !strings.HasPrefix(path.Clean(f.Path), KineFilesPath+"/") {
			return nil, fmt.Errorf("the plugin placed kine file %s outside %s", f.Path, KineFilesPath)
		}
		data[kineFileKey(i)] = f.Content
	}
	return data, nil
}

// kineStorage maps the plugin's sidecar to the Deployment builder's input: secret values and
// files travel through the datastore-config Secret, never in the pod spec.
func kineStorage(r *Reconciler, p *pass) (*controlplane.KineStorage, error) {
	k := p.conn.Kine
	image := k.Image
	if image == "" {
		image = r.Options.KineImage
	}
	ks := &controlplane.KineStorage{Image: image, Args: k.Args, Endpoint: k.ListenEndpoint, FilesSecret: p.storageSecret, FilesPath: KineFilesPath}
	for _, e := range k.Env {
		if e.Secret {
			ks.Env = append(ks.Env, corev1.EnvVar{Name: e.Name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: p.storageSecret}, Key: "env-" + e.Name,
			}}})
			continue
		}
		ks.Env = append(ks.Env, corev1.EnvVar{Name: e.Name, Value: e.Value})
	}
	for i, f := range k.Files {
		rel, ok := strings.CutPrefix(path.Clean(f.Path), KineFilesPath+"/")
		if !ok {
			return nil, fmt.Errorf("kine file %s is outside %s", f.Path, KineFilesPath)
		}
		item := corev1.KeyToPath{Key: kineFileKey(i), Path: rel}
		if f.Mode != 0 {
			mode := int32(f.Mode)
			item.Mode = &mode
		}
		ks.Files = append(ks.Files, item)
	}
	if len(ks.Files) == 0 {
		ks.FilesSecret, ks.FilesPath = "", ""
	}
	return ks, nil
}
