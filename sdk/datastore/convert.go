package datastore

import (
	pb "github.com/openhcp/kamaji/sdk/internal/gen/kamaji/datastore/v1"
)

// Conversions between the generated types, which stay internal so that the wire format can
// evolve without breaking plugin code, and the Go types of this package.

func configToPB(c Config) *pb.DataStoreConfig {
	return &pb.DataStoreConfig{
		Name: c.Name, Driver: c.Driver, Endpoints: c.Endpoints,
		CaCert: c.CACert, CaKey: c.CAKey, ClientCert: c.ClientCert, ClientKey: c.ClientKey,
		Username: c.Username, Password: c.Password, Parameters: c.Parameters,
	}
}

func configFromPB(c *pb.DataStoreConfig) Config {
	return Config{
		Name: c.GetName(), Driver: c.GetDriver(), Endpoints: c.GetEndpoints(),
		CACert: c.GetCaCert(), CAKey: c.GetCaKey(), ClientCert: c.GetClientCert(), ClientKey: c.GetClientKey(),
		Username: c.GetUsername(), Password: c.GetPassword(), Parameters: c.GetParameters(),
	}
}

func tenantToPB(t Tenant) *pb.Tenant {
	return &pb.Tenant{Namespace: t.Namespace, Name: t.Name, Schema: t.Schema, Username: t.Username, Uid: t.UID}
}

func tenantFromPB(t *pb.Tenant) Tenant {
	return Tenant{Namespace: t.GetNamespace(), Name: t.GetName(), Schema: t.GetSchema(), Username: t.GetUsername(), UID: t.GetUid()}
}

func capsToPB(caps []Capability) []pb.Capability {
	out := make([]pb.Capability, len(caps))
	for i, c := range caps {
		out[i] = pb.Capability(c)
	}
	return out
}

func capsFromPB(caps []pb.Capability) []Capability {
	out := make([]Capability, len(caps))
	for i, c := range caps {
		out[i] = Capability(c)
	}
	return out
}

func connectionToPB(c Connection) *pb.EnsureTenantResponse {
	switch {
	case c.Etcd != nil:
		return &pb.EnsureTenantResponse{Connection: &pb.EnsureTenantResponse_Etcd{Etcd: &pb.EtcdConnection{
			Servers: c.Etcd.Servers,
			Prefix:  c.Etcd.Prefix,
			ClientCertificate: &pb.CertificateRequest{
				CommonName:    c.Etcd.ClientCertificate.CommonName,
				Organizations: c.Etcd.ClientCertificate.Organizations,
			},
		}}}
	case c.Kine != nil:
		k := &pb.KineSidecar{Image: c.Kine.Image, Args: c.Kine.Args, ListenEndpoint: c.Kine.ListenEndpoint}
		for _, e := range c.Kine.Env {
			k.Env = append(k.Env, &pb.EnvVar{Name: e.Name, Value: e.Value, Secret: e.Secret})
		}
		for _, f := range c.Kine.Files {
			k.Files = append(k.Files, &pb.File{Path: f.Path, Content: f.Content, Mode: f.Mode, Secret: f.Secret})
		}
		return &pb.EnsureTenantResponse{Connection: &pb.EnsureTenantResponse_Kine{Kine: k}}
	}
	return &pb.EnsureTenantResponse{}
}

func connectionFromPB(r *pb.EnsureTenantResponse) Connection {
	if e := r.GetEtcd(); e != nil {
		return Connection{Etcd: &EtcdConnection{
			Servers: e.GetServers(),
			Prefix:  e.GetPrefix(),
			ClientCertificate: CertificateRequest{
				CommonName:    e.GetClientCertificate().GetCommonName(),
				Organizations: e.GetClientCertificate().GetOrganizations(),
			},
		}}
	}
	if k := r.GetKine(); k != nil {
		out := &KineSidecar{Image: k.GetImage(), Args: k.GetArgs(), ListenEndpoint: k.GetListenEndpoint()}
		for _, e := range k.GetEnv() {
			out.Env = append(out.Env, EnvVar{Name: e.GetName(), Value: e.GetValue(), Secret: e.GetSecret()})
		}
		for _, f := range k.GetFiles() {
			out.Files = append(out.Files, File{Path: f.GetPath(), Content: f.GetContent(), Mode: f.GetMode(), Secret: f.GetSecret()})
		}
		return Connection{Kine: out}
	}
	return Connection{}
}

func usageToPB(u Usage) *pb.Usage { return &pb.Usage{Bytes: u.Bytes, Keys: u.Keys} }

func usageFromPB(u *pb.Usage) Usage { return Usage{Bytes: u.GetBytes(), Keys: u.GetKeys()} }

func chunkToPB(kvs []KeyValue) *pb.Chunk {
	c := &pb.Chunk{Kvs: make([]*pb.KeyValue, len(kvs))}
	for i, kv := range kvs {
		c.Kvs[i] = &pb.KeyValue{Key: kv.Key, Value: kv.Value}
	}
	return c
}

func chunkFromPB(c *pb.Chunk) []KeyValue {
	kvs := make([]KeyValue, len(c.GetKvs()))
	for i, kv := range c.GetKvs() {
		kvs[i] = KeyValue{Key: kv.GetKey(), Value: kv.GetValue()}
	}
	return kvs
}
