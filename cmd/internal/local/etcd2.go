package local

import (
	"context"
	"net"
	"slices"
	"strconv"
)

// DataStoreEtcd2 is a second multi-tenant etcd with its DataStore "etcd-2" (`--datastores
// etcd-2`, part of `all`): a target for moving tenants between two etcd DataStores.
const DataStoreEtcd2 = "etcd-2"

const etcd2Component = "datastore-etcd-2"

// Its ports sit beside the first one's (2379/2380).
const etcd2Port, etcd2PeerPort = 2381, 2382

func (p *Plane) etcd2Endpoint() string {
	return net.JoinHostPort(p.cfg.Gateway, strconv.Itoa(etcd2Port))
}

// wantEtcd2: asked for, or started by an earlier up (its data folder is there).
func (p *Plane) wantEtcd2() bool {
	return slices.Contains(p.cfg.DataStores, DataStoreEtcd2) || fileExists(p.cfg.path(etcd2Component))
}

// etcd2Stages start the second etcd (before the manager) and create its DataStore (after).
func (p *Plane) etcd2Stages() (backend, dataStore []stage) {
	if !p.wantEtcd2() {
		return nil, nil
	}
	backend = []stage{{"datastore etcd-2", func(ctx context.Context) (string, error) {
		c := p.etcdStore(etcd2Component, etcd2Component, etcd2Port, etcd2PeerPort)
		running, err := p.ensure(ctx, c)
		if err != nil {
			return "", err
		}
		if err := p.enableEtcdAuth(ctx, p.etcd2Endpoint()); err != nil {
			return "", &StageError{Component: c.name, Log: p.logPath(c.name), Err: err}
		}
		detail := "https://" + p.etcd2Endpoint() + ", TLS + auth"
		if running {
			detail += ", already running"
		}
		return detail, nil
	}}}
	dataStore = []stage{{"DataStore etcd-2", func(ctx context.Context) (string, error) {
		return p.applyEtcdDataStore(ctx, DataStoreEtcd2, p.etcd2Endpoint())
	}}}
	return backend, dataStore
}
