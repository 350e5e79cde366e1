package conformance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/internal/pki"
)

// Backend opens a session to a tenant's data the way the tenant's kube-apiserver would, with
// the connection EnsureTenant returned. The kit uses it to check what a tenant can and cannot
// reach, so it must not borrow the DataStore's admin credentials for Open.
//
// EtcdBackend serves the etcd connection type. A driver answering with a kine sidecar supplies
// its own Backend: typically it starts the sidecar's kine (with the returned args, env and
// files) and returns an etcd session to its listen endpoint, with Prefix "/".
type Backend interface {
	Open(ctx context.Context, ds datastore.Config, t datastore.Tenant, conn datastore.Connection) (Session, error)
}

// Session is a tenant's view of the datastore. Keys are absolute, as the apiserver writes them:
// Prefix plus a relative key.
type Session interface {
	// Prefix is the tenant's key prefix ("/schema/" for etcd). It must differ between tenants so
	// that the kit can address another tenant's keys with a session: when the whole backend
	// namespace belongs to the tenant, as with kine, the session maps "/<namespace>/" to it (see
	// kine.Backend). Sessions that share a prefix cannot check isolation: the kit skips it.
	Prefix() string
	Put(ctx context.Context, key string, value []byte) error
	// Get returns found=false for an absent key. A permission error is an error.
	Get(ctx context.Context, key string) (value []byte, found bool, err error)
	Close() error
}

// Inspector is an optional Backend extension: Residue lists what remains of a tenant after
// DeleteTenant (users, roles or grants, keys), using the DataStore's admin credentials.
type Inspector interface {
	Residue(ctx context.Context, ds datastore.Config, t datastore.Tenant, conn datastore.Connection) ([]string, error)
}

// EtcdBackend opens sessions for the etcd connection type. Like the core, it signs the
// requested client certificate with the DataStore CA (ds.CACert and ds.CAKey) and connects to the
// returned servers with it.
type EtcdBackend struct{}

var (
	_ Backend   = EtcdBackend{}
	_ Inspector = EtcdBackend{}
)

func (EtcdBackend) Open(ctx context.Context, ds datastore.Config, _ datastore.Tenant, conn datastore.Connection) (Session, error) {
	if conn.Etcd == nil {
		return nil, errors.New("the etcd backend needs an etcd connection")
	}
	if len(ds.CAKey) == 0 {
		return nil, errors.New("the etcd backend signs the tenant certificate with the DataStore CA: caKey is empty")
	}
	req := conn.Etcd.ClientCertificate
	kp, err := pki.Issue(pki.KeyPair{Cert: ds.CACert, Key: ds.CAKey}, req.CommonName, req.Organizations, false, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("sign tenant certificate: %w", err)
	}
	cli, err := etcdClient(conn.Etcd.Servers, ds.CACert, kp.Cert, kp.Key, "", "")
	if err != nil {
		return nil, err
	}
	return &etcdSession{cli: cli, prefix: conn.Etcd.Prefix}, nil
}

// Residue reports the tenant's user, any role granting a range inside the tenant's prefix, and
// the keys left under the prefix.
func (EtcdBackend) Residue(ctx context.Context, ds datastore.Config, t datastore.Tenant, conn datastore.Connection) ([]string, error) {
	if conn.Etcd == nil {
		return nil, errors.New("the etcd backend needs an etcd connection")
	}
	cli, err := etcdClient(ds.Endpoints, ds.CACert, ds.ClientCert, ds.ClientKey, ds.Username, ds.Password)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	var residue []string
	user := conn.Etcd.ClientCertificate.CommonName
	if _, err := cli.UserGet(ctx, user); err == nil {
		residue = append(residue, fmt.Sprintf("user %q", user))
	} else if !errors.Is(err, rpctypes.ErrUserNotFound) {
		return nil, err
	}
	prefix := conn.Etcd.Prefix
	roles, err := cli.RoleList(ctx)
	if err != nil {
		return nil, err
	}
	for _, role := range roles.Roles {
		r, err := cli.RoleGet(ctx, role)
		if err != nil {
			return nil, err
		}
		for _, p := range r.Perm {
			if strings.HasPrefix(string(p.Key), prefix) {
				residue = append(residue, fmt.Sprintf("role %q grants %q", role, p.Key))
			}
		}
	}
	n, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return nil, err
	}
	if n.Count > 0 {
		residue = append(residue, fmt.Sprintf("%d keys under %q", n.Count, prefix))
	}
	return residue, nil
}

type etcdSession struct {
	cli    *clientv3.Client
	prefix string
}

func (s *etcdSession) Prefix() string { return s.prefix }

func (s *etcdSession) Put(ctx context.Context, key string, value []byte) error {
	_, err := s.cli.Put(ctx, key, string(value))
	return err
}

func (s *etcdSession) Get(ctx context.Context, key string) ([]byte, bool, error) {
	r, err := s.cli.Get(ctx, key)
	if err != nil {
		return nil, false, err
	}
	if len(r.Kvs) == 0 {
		return nil, false, nil
	}
	return r.Kvs[0].Value, true, nil
}

func (s *etcdSession) Close() error { return s.cli.Close() }

func etcdClient(endpoints []string, caCert, cert, key []byte, user, password string) (*clientv3.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caCert) {
		return nil, errors.New("caCert holds no PEM certificate")
	}
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if len(cert) > 0 {
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, err
		}
		tlsCfg.Certificates = []tls.Certificate{pair}
	}
	eps := make([]string, len(endpoints))
	for i, ep := range endpoints {
		eps[i] = ep
		if !strings.Contains(ep, "://") {
			eps[i] = "https://" + ep
		}
	}
	return clientv3.New(clientv3.Config{
		Endpoints:   eps,
		TLS:         tlsCfg,
		Username:    user,
		Password:    password,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
}
