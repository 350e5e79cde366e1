// Package fake holds in-memory plugins for the SDK's own tests: a datastore that isolates
// tenants by key prefix like etcd does, and an addon that echoes its input.
package fake

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/addon"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// ErrPermissionDenied is what a Store answers a user outside its prefix.
var ErrPermissionDenied = errors.New("permission denied")

// Store is the fake backend: absolute keys, users confined to a prefix, and the owner of each
// schema and user.
type Store struct {
	mu     sync.Mutex
	data   map[string][]byte
	users  map[string]string          // user -> prefix
	owners map[string]datastore.Owner // "schema/<schema>" or "user/<user>" -> owner
}

func NewStore() *Store {
	return &Store{data: map[string][]byte{}, users: map[string]string{}, owners: map[string]datastore.Owner{}}
}

// Access checks that user may touch key.
func (s *Store) Access(user, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.users[user]
	if !ok || !strings.HasPrefix(key, p) {
		return ErrPermissionDenied
	}
	return nil
}

func (s *Store) Put(key string, v []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[key] = slices.Clone(v)
}

func (s *Store) Get(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[key]
	return v, ok
}

// Residue lists the user if it exists and the keys under prefix.
func (s *Store) Residue(user, prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	if _, ok := s.users[user]; ok {
		out = append(out, "user "+user)
	}
	for k := range s.data {
		if strings.HasPrefix(k, prefix) {
			out = append(out, "key "+k)
		}
	}
	return out
}

// Datastore is a datastore plugin over a Store. It supports export/import but not usage, so
// tests see both a streaming RPC and an UNIMPLEMENTED one.
type Datastore struct {
	datastore.Unimplemented
	Store *Store
	// ProbeMessage is returned by Probe; the test plugin reports its transport security in it.
	ProbeMessage string
}

func NewDatastore() *Datastore { return &Datastore{Store: NewStore()} }

func (d *Datastore) GetPluginInfo(context.Context) (datastore.PluginInfo, error) {
	return datastore.PluginInfo{Name: "fake", VendorVersion: "0.0.1", Drivers: []string{"fake"}}, nil
}

func (d *Datastore) Capabilities(context.Context) ([]datastore.Capability, error) {
	return []datastore.Capability{datastore.CapabilityMultiTenant, datastore.CapabilityDirectEtcd, datastore.CapabilityExportImport}, nil
}

func (d *Datastore) Probe(context.Context) (datastore.ProbeResult, error) {
	return datastore.ProbeResult{Ready: true, Message: d.ProbeMessage}, nil
}

// ValidateConfig blocks until the context ends when the parameter "block" is set, which lets
// tests observe the client's default deadline.
func (d *Datastore) ValidateConfig(ctx context.Context, cfg datastore.Config) error {
	if len(cfg.Endpoints) == 0 {
		return sdk.InvalidField("endpoints", "at least one endpoint is required")
	}
	if cfg.Parameters["block"] == "true" {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func prefix(t datastore.Tenant) (string, error) {
	if t.Schema == "" {
		return "", sdk.InvalidField("tenant.schema", "required")
	}
	return "/" + t.Schema + "/", nil
}

// EnsureTenant refuses a schema or user recorded for another owner, or a user that already
// holds another prefix, before changing anything.
func (d *Datastore) EnsureTenant(_ context.Context, _ datastore.Config, t datastore.Tenant) (datastore.Connection, error) {
	p, err := prefix(t)
	if err != nil {
		return datastore.Connection{}, err
	}
	s := d.Store
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.owners["schema/"+t.Schema]; ok && !o.Same(t.Owner()) {
		return datastore.Connection{}, sdk.Owned("tenant.schema", "prefix %q is owned by %s", p, o)
	}
	if o, ok := s.owners["user/"+t.Username]; ok && !o.Same(t.Owner()) {
		return datastore.Connection{}, sdk.Owned("tenant.username", "user %q is owned by %s", t.Username, o)
	}
	if held, ok := s.users[t.Username]; ok && held != p {
		return datastore.Connection{}, sdk.Owned("tenant.username", "user %q already holds %q", t.Username, held)
	}
	s.owners["schema/"+t.Schema] = t.Owner()
	s.owners["user/"+t.Username] = t.Owner()
	s.users[t.Username] = p
	return datastore.Connection{Etcd: &datastore.EtcdConnection{
		Servers: []string{"https://fake:2379"}, Prefix: p,
		ClientCertificate: datastore.CertificateRequest{CommonName: t.Username},
	}}, nil
}

// DeleteTenant removes the user and the keys that t owns (or that nobody does).
func (d *Datastore) DeleteTenant(_ context.Context, _ datastore.Config, t datastore.Tenant) error {
	p, err := prefix(t)
	if err != nil {
		return err
	}
	s := d.Store
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.owners["user/"+t.Username]; !ok || o.Same(t.Owner()) {
		delete(s.users, t.Username)
		delete(s.owners, "user/"+t.Username)
	}
	if o, ok := s.owners["schema/"+t.Schema]; !ok || o.Same(t.Owner()) {
		for k := range s.data {
			if strings.HasPrefix(k, p) {
				delete(s.data, k)
			}
		}
		delete(s.owners, "schema/"+t.Schema)
	}
	return nil
}

// Export yields two keys per chunk so that small tests cross chunk boundaries.
func (d *Datastore) Export(_ context.Context, _ datastore.Config, t datastore.Tenant) iter.Seq2[[]datastore.KeyValue, error] {
	return func(yield func([]datastore.KeyValue, error) bool) {
		p, err := prefix(t)
		if err != nil {
			yield(nil, err)
			return
		}
		d.Store.mu.Lock()
		var kvs []datastore.KeyValue
		for _, k := range slices.Sorted(maps.Keys(d.Store.data)) {
			if strings.HasPrefix(k, p) {
				kvs = append(kvs, datastore.KeyValue{Key: []byte(k[len(p):]), Value: d.Store.data[k]})
			}
		}
		d.Store.mu.Unlock()
		for c := range slices.Chunk(kvs, 2) {
			if !yield(c, nil) {
				return
			}
		}
	}
}

func (d *Datastore) Import(_ context.Context, _ datastore.Config, t datastore.Tenant, chunks iter.Seq2[[]datastore.KeyValue, error]) (datastore.ImportResult, error) {
	var res datastore.ImportResult
	p, err := prefix(t)
	if err != nil {
		return res, err
	}
	for kvs, err := range chunks {
		if err != nil {
			return res, err
		}
		for _, kv := range kvs {
			d.Store.Put(p+string(kv.Key), kv.Value)
			res.Keys++
			res.Bytes += int64(len(kv.Key) + len(kv.Value))
		}
	}
	return res, nil
}

// Addon renders one ConfigMap describing its input.
type Addon struct{}

func (Addon) GetPluginInfo(context.Context) (addon.PluginInfo, error) {
	return addon.PluginInfo{Name: "fake-addon", VendorVersion: "0.0.1", Addons: []string{"echo"}}, nil
}

func (Addon) Capabilities(context.Context) ([]addon.Capability, error) {
	return []addon.Capability{addon.CapabilityControlPlaneAdditions}, nil
}

func (Addon) Probe(context.Context) (addon.ProbeResult, error) {
	return addon.ProbeResult{Ready: true}, nil
}

func (Addon) Render(_ context.Context, req addon.RenderRequest) (addon.RenderResult, error) {
	if req.Addon != "echo" {
		return addon.RenderResult{}, sdk.InvalidField("addon", "unknown addon %q", req.Addon)
	}
	obj, err := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "echo", "namespace": "kube-system"},
		"data": map[string]any{
			"tenant": req.Tenant.Namespace + "/" + req.Tenant.Name, "version": req.Tenant.KubernetesVersion,
			"dns": strings.Join(req.Tenant.DNSServiceIPs, ","), "params": req.Params,
		},
	})
	if err != nil {
		return addon.RenderResult{}, err
	}
	return addon.RenderResult{
		Objects: [][]byte{obj},
		ControlPlane: &addon.ControlPlaneAdditions{
			Containers:            [][]byte{[]byte(`{"name":"echo","image":"` + req.Tenant.ImageRepository + `/echo"}`)},
			Volumes:               [][]byte{[]byte(`{"name":"echo-socket","emptyDir":{}}`)},
			APIServerExtraArgs:    []string{"--echo=" + req.Tenant.ClusterDomain},
			ServicePorts:          []addon.ServicePort{{Name: "echo", Port: 8132, TargetPort: 8132, Protocol: "TCP"}},
			APIServerVolumeMounts: [][]byte{[]byte(`{"name":"echo-socket","mountPath":"/run/echo"}`)},
			Files:                 []addon.File{{Path: "/etc/kubernetes/echo/echo.yaml", Content: []byte("tenant: " + req.Tenant.Name + "\n")}},
		},
	}, nil
}
