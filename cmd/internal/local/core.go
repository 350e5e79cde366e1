package local

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kamajiv1alpha1 "github.com/openhcp/kamaji/core/api/v1alpha1"
)

// pluginPath is the etcd datastore plugin `make build` puts beside kamaji.
func (p *Plane) pluginPath() string { return filepath.Join(p.cfg.BinDir, "kamaji-datastore-etcd") }

// stageDataStoreEtcd starts the multi-tenant etcd (TLS, client certificates, auth enabled
// with a root user mapped from the CN "root"), as a production DataStore is set up.
func (p *Plane) stageDataStoreEtcd(ctx context.Context) (string, error) {
	c := p.dataStoreEtcd()
	running, err := p.ensure(ctx, c)
	if err != nil {
		return "", err
	}
	if err := p.enableEtcdAuth(ctx, p.cfg.DataStoreEndpoint()); err != nil {
		return "", &StageError{Component: c.name, Log: p.logPath(c.name), Err: err}
	}
	detail := "https://" + p.cfg.DataStoreEndpoint() + ", TLS + auth"
	if running {
		detail += ", already running"
	}
	return detail, nil
}

func (p *Plane) etcdClient() (*clientv3.Client, error) {
	return p.etcdClientAt(p.cfg.DataStoreEndpoint())
}

// etcdClientAt is the root client (CN root) of the multi-tenant etcd at endpoint.
func (p *Plane) etcdClientAt(endpoint string) (*clientv3.Client, error) {
	key, err := p.pki.Root.KeyPEM()
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(p.pki.Root.CertPEM(), key)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.pki.StoreCA.Cert)
	return clientv3.New(clientv3.Config{
		Endpoints:   []string{"https://" + endpoint},
		DialTimeout: 5 * time.Second,
		TLS:         &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12},
		Logger:      zap.NewNop(),
	})
}

func (p *Plane) enableEtcdAuth(ctx context.Context, endpoint string) error {
	cli, err := p.etcdClientAt(endpoint)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := cli.AuthStatus(ctx)
	if err != nil {
		return fmt.Errorf("auth status: %w", err)
	}
	if st.Enabled {
		return nil
	}
	if _, err := cli.UserAddWithOptions(ctx, "root", "", &clientv3.UserAddOptions{NoPassword: true}); err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("add root user: %w", err)
	}
	if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
		return fmt.Errorf("grant root: %w", err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		return fmt.Errorf("enable auth: %w", err)
	}
	return nil
}

// webhooksEnforced answers nil once the apiserver calls our webhooks (registration is
// asynchronous): a dry-run TCP with a version newer than any known minor must be refused by our
// rule (older versions are accepted, with a warning).
func (p *Plane) webhooksEnforced(ctx context.Context) error {
	probe := &kamajiv1alpha1.TenantControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: "webhook-probe", Namespace: "default"},
		Spec: kamajiv1alpha1.TenantControlPlaneSpec{
			ControlPlane: kamajiv1alpha1.ControlPlane{Service: kamajiv1alpha1.ServiceSpec{ServiceType: "ClusterIP"}},
			Kubernetes:   kamajiv1alpha1.KubernetesSpec{Version: "v1.99.0"},
		},
	}
	err := p.cl.Create(ctx, probe, client.DryRunAll)
	if err != nil && strings.Contains(err.Error(), "spec.kubernetes.version") {
		return nil
	}
	return fmt.Errorf("the apiserver does not call the webhooks yet (answer: %v)", err)
}

// stageDataStore creates (or updates) the DataStore "default" and waits until it is Ready.
func (p *Plane) stageDataStore(ctx context.Context) (string, error) {
	return p.applyEtcdDataStore(ctx, "default", p.cfg.DataStoreEndpoint())
}

// applyEtcdDataStore creates (or updates) an etcd DataStore of the plane's and waits until it
// is Ready.
func (p *Plane) applyEtcdDataStore(ctx context.Context, name, endpoint string) (string, error) {
	ds := &kamajiv1alpha1.DataStore{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: kamajiv1alpha1.DataStoreSpec{
			Driver: "etcd", Endpoints: []string{endpoint},
			TLSConfig: &kamajiv1alpha1.TLSConfig{
				CertificateAuthority: kamajiv1alpha1.CertKeyPair{
					Certificate: kamajiv1alpha1.ContentRef{Content: p.pki.StoreCA.CertPEM()},
					PrivateKey:  &kamajiv1alpha1.ContentRef{Content: mustKey(p.pki.StoreCA.KeyPEM())},
				},
				ClientCertificate: &kamajiv1alpha1.ClientCertificate{
					Certificate: kamajiv1alpha1.ContentRef{Content: p.pki.Root.CertPEM()},
					PrivateKey:  kamajiv1alpha1.ContentRef{Content: mustKey(p.pki.Root.KeyPEM())},
				},
			},
		},
	}
	cur := &kamajiv1alpha1.DataStore{}
	err := p.cl.Get(ctx, client.ObjectKey{Name: name}, cur)
	switch {
	case apierrors.IsNotFound(err):
		err = p.cl.Create(ctx, ds)
	case err == nil:
		cur.Spec = ds.Spec
		err = p.cl.Update(ctx, cur)
	}
	if err != nil {
		return "", err
	}
	err = pollReady(ctx, 60*time.Second, nil, func(ctx context.Context) error {
		got := &kamajiv1alpha1.DataStore{}
		if err := p.cl.Get(ctx, client.ObjectKey{Name: name}, got); err != nil {
			return err
		}
		if meta.IsStatusConditionTrue(got.Status.Conditions, "Ready") {
			return nil
		}
		return fmt.Errorf("DataStore %s is not Ready: %v", name, got.Status.Conditions)
	})
	if err != nil {
		return "", p.managerError(ctx, err)
	}
	return "etcd at " + endpoint, nil
}

func mustKey(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
