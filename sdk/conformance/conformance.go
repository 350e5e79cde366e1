// Package conformance verifies a datastore plugin against a real backend, in the spirit of
// csi-sanity: identity and capabilities, idempotent provisioning, tenant isolation both ways
// between every pair of tenants (names that share a prefix included), ownership (a schema or user
// recorded for another TenantControlPlane is refused and left untouched), deletion that removes
// the tenant without residue and nothing of anybody else, export/import fidelity, usage, and
// field-naming validation errors. Checks of an optional feature are skipped, naming the
// capability, when the plugin does not announce it.
//
// Use RunDataStore from a Go test, or Verify for a report (the `kamaji plugin verify` command).
package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// Config says what to verify against what.
type Config struct {
	// PluginPath is the plugin binary under test, started through the real transport.
	PluginPath string
	// PluginSHA256 pins the binary; empty means the checksum of the file at PluginPath.
	PluginSHA256 string
	PluginArgs   []string
	PluginEnv    []string
	// PluginLogger receives the plugin's logs; default: warnings on stderr.
	PluginLogger hclog.Logger

	// Plugin, instead of PluginPath, verifies an in-process implementation (no transport).
	Plugin datastore.Plugin

	// DataStore is the configuration passed to the plugin: a real backend, with admin
	// credentials, and the CA key when the connection type needs client certificates.
	DataStore datastore.Config

	// Backend opens tenant sessions. Nil picks EtcdBackend for etcd connections; drivers
	// answering with a kine sidecar must set it.
	Backend Backend

	// Namespace is the namespace of the test tenants. Default "kamaji-conformance".
	Namespace string
	// ExportKeys is the number of keys the export/import check writes; enough to need several
	// chunks. Default 1100.
	ExportKeys int
	// Timeout bounds each check. Default 2 minutes.
	Timeout time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if (c.PluginPath == "") == (c.Plugin == nil) {
		return c, errors.New("conformance: set exactly one of PluginPath and Plugin")
	}
	if c.Namespace == "" {
		c.Namespace = "kamaji-conformance"
	}
	if c.ExportKeys <= 0 {
		c.ExportKeys = 1100
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Minute
	}
	return c, nil
}

// Verify runs every check and returns the report. The error is only for a Config that cannot
// be run at all; a plugin that fails to start is a failed check in the report.
func Verify(ctx context.Context, cfg Config) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	r := newRunner(cfg)
	defer r.cleanup()
	for _, c := range checks {
		r.report.Results = append(r.report.Results, r.run(ctx, c))
	}
	return r.report, nil
}

// RunDataStore runs every check as a subtest of t: failed checks fail, skipped ones skip.
func RunDataStore(t *testing.T, cfg Config) {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	r := newRunner(cfg)
	t.Cleanup(r.cleanup)
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			res := r.run(t.Context(), c)
			switch res.Status {
			case Fail:
				t.Fatal(res.Reason)
			case Skip:
				t.Skip(res.Reason)
			default:
				t.Log(res.Reason)
			}
		})
	}
}

// runner carries the state checks hand to each other: the plugin, the provisioned tenants,
// their sessions and what each of them holds. Tenants are known by a short id ("a", "ab"...).
type runner struct {
	cfg     Config
	plugin  datastore.Plugin
	client  *datastore.Client
	backend Backend
	id      string
	passed  map[string]bool
	// tenants holds every tenant the run named, with its uid, so that a tenant is the same owner
	// each time a check refers to it.
	tenants map[string]datastore.Tenant
	// ensured were handed to EnsureTenant (refused or not); cleanup deletes those not deleted.
	ensured map[string]datastore.Tenant
	deleted map[string]bool
	// lost are tenants found unable to read back their data: a check failed on them, and later
	// checks no longer count on them.
	lost     map[string]bool
	conns    map[string]datastore.Connection
	sessions map[string]Session
	// data is what each tenant holds, by key relative to its session's prefix: every key the kit
	// wrote or imported, with its current value.
	data   map[string]map[string][]byte
	report Report
}

func newRunner(cfg Config) *runner {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return &runner{
		cfg:      cfg,
		backend:  cfg.Backend,
		id:       hex.EncodeToString(b),
		passed:   map[string]bool{},
		tenants:  map[string]datastore.Tenant{},
		ensured:  map[string]datastore.Tenant{},
		deleted:  map[string]bool{},
		lost:     map[string]bool{},
		conns:    map[string]datastore.Connection{},
		sessions: map[string]Session{},
		data:     map[string]map[string][]byte{},
	}
}

// tenant returns the tenant known as id, naming it on first use. Names are unique per run so
// that runs against a shared datastore do not collide, and use underscores so SQL drivers can use
// them as database and user names; the uid is random, like a TenantControlPlane's.
func (r *runner) tenant(id string) datastore.Tenant {
	if t, ok := r.tenants[id]; ok {
		return t
	}
	base := "conformance_" + r.id + "_" + id
	t := datastore.Tenant{
		Namespace: r.cfg.Namespace,
		Name:      "conformance-" + r.id + "-" + id,
		Schema:    base,
		Username:  base,
		UID:       newUID(),
	}
	r.tenants[id] = t
	return t
}

// define makes t the tenant known as id (a twin borrowing another tenant's names).
func (r *runner) define(id string, t datastore.Tenant) datastore.Tenant {
	r.tenants[id] = t
	return t
}

// newUID returns a random version 4 UUID, the form of a Kubernetes object's metadata.uid.
func newUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

type check struct {
	name        string
	description string
	needs       []string
	// run returns what it verified, or an error; a skipError skips.
	run func(ctx context.Context, r *runner) (string, error)
}

type skipError string

func (s skipError) Error() string { return string(s) }

func skipf(format string, args ...any) error { return skipError(fmt.Sprintf(format, args...)) }

func (r *runner) run(ctx context.Context, c check) Result {
	res := Result{Name: c.name, Description: c.description}
	for _, n := range c.needs {
		if !r.passed[n] {
			res.Status, res.Reason = Skip, fmt.Sprintf("needs check %q, which did not pass", n)
			return res
		}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	note, err := c.run(ctx, r)
	res.Duration = time.Since(start)
	var skip skipError
	switch {
	case errors.As(err, &skip):
		res.Status, res.Reason = Skip, skip.Error()
	case err != nil:
		res.Status, res.Reason = Fail, err.Error()
	default:
		res.Status, res.Reason = Pass, note
		r.passed[c.name] = true
	}
	return res
}

func (r *runner) hasCap(c datastore.Capability) bool {
	return slices.Contains(r.report.Capabilities, c)
}

func (r *runner) needCap(c datastore.Capability) error {
	if !r.hasCap(c) {
		return skipf("plugin does not announce capability %s", c)
	}
	return nil
}

func (r *runner) ensure(ctx context.Context, id string) (datastore.Connection, error) {
	t := r.tenant(id)
	r.ensured[id] = t
	conn, err := r.plugin.EnsureTenant(ctx, r.cfg.DataStore, t)
	if err != nil {
		return conn, fmt.Errorf("EnsureTenant(%s): %w", t.Name, err)
	}
	r.conns[id] = conn
	if r.deleted[id] || r.data[id] == nil {
		// A tenant provisioned (again) starts empty.
		delete(r.deleted, id)
		r.data[id] = map[string][]byte{}
	}
	return conn, nil
}

func (r *runner) open(ctx context.Context, id string) (Session, error) {
	if r.backend == nil {
		return nil, skipf("no backend adapter for this connection type (kine sidecar); set conformance.Config.Backend")
	}
	s, err := r.backend.Open(ctx, r.cfg.DataStore, r.tenant(id), r.conns[id])
	if err != nil {
		return nil, fmt.Errorf("open a session as tenant %s with the returned connection: %w", r.tenant(id).Name, err)
	}
	if old := r.sessions[id]; old != nil {
		_ = old.Close()
	}
	r.sessions[id] = s
	return s, nil
}

// put writes a key of tenant id through its own session, and remembers it.
func (r *runner) put(ctx context.Context, id, rel string, value []byte) error {
	s := r.sessions[id]
	if err := s.Put(ctx, s.Prefix()+rel, value); err != nil {
		return fmt.Errorf("tenant %s: put %s: %w", id, s.Prefix()+rel, err)
	}
	r.data[id][rel] = bytes.Clone(value)
	return nil
}

// readBack checks, through tenant id's own session, that every key it holds reads back with its
// value: which also proves that its user and grants are intact.
func (r *runner) readBack(ctx context.Context, id string) error {
	s := r.sessions[id]
	for _, rel := range slices.Sorted(maps.Keys(r.data[id])) {
		key, want := s.Prefix()+rel, r.data[id][rel]
		v, found, err := s.Get(ctx, key)
		switch {
		case err != nil:
			return fmt.Errorf("get %s: %w", key, err)
		case !found:
			return fmt.Errorf("key %s is gone", key)
		case !bytes.Equal(v, want):
			return fmt.Errorf("key %s holds %q, want %q", key, trim(v), trim(want))
		}
	}
	return nil
}

// live lists the tenants provisioned, not deleted nor lost, with a session, sorted.
func (r *runner) live() []string {
	var ids []string
	for id := range r.sessions {
		if _, ok := r.ensured[id]; ok && !r.deleted[id] && !r.lost[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// othersIntact checks that every live tenant still reads back all its keys after what happened.
// It returns how many keys it read. A tenant that does not is reported, and lost.
func (r *runner) othersIntact(ctx context.Context, what string) (int, error) {
	n := 0
	var first error
	var lost []string
	for _, id := range r.live() {
		if err := r.readBack(ctx, id); err != nil {
			if first == nil {
				first = fmt.Errorf("after %s, tenant %s no longer reads back its own data with its own connection: %w", what, id, err)
			} else {
				lost = append(lost, id)
			}
			r.lost[id] = true
			continue
		}
		n += len(r.data[id])
	}
	if first != nil && len(lost) > 0 {
		return n, fmt.Errorf("%w; nor do tenants %s", first, strings.Join(lost, ", "))
	}
	return n, first
}

// delete deletes tenant id and checks that every other live tenant still reads back its data.
func (r *runner) delete(ctx context.Context, id string) (int, error) {
	t := r.tenant(id)
	if err := r.plugin.DeleteTenant(ctx, r.cfg.DataStore, t); err != nil {
		return 0, fmt.Errorf("DeleteTenant(%s): %w", t.Name, err)
	}
	r.deleted[id] = true
	return r.othersIntact(ctx, "DeleteTenant of tenant "+id)
}

// cleanup deletes every tenant the run provisioned and did not delete, whatever the checks
// left, and stops the plugin.
func (r *runner) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, s := range r.sessions {
		_ = s.Close()
	}
	if r.plugin != nil {
		for _, id := range slices.Sorted(maps.Keys(r.ensured)) {
			if !r.deleted[id] {
				_ = r.plugin.DeleteTenant(ctx, r.cfg.DataStore, r.ensured[id])
			}
		}
	}
	if r.client != nil {
		_ = r.client.Close()
	}
}

func (r *runner) startPlugin() (string, error) {
	if r.cfg.Plugin != nil {
		r.plugin = r.cfg.Plugin
		return "in-process plugin, no transport", nil
	}
	sum := r.cfg.PluginSHA256
	if sum == "" {
		var err error
		if sum, err = sdk.FileSHA256(r.cfg.PluginPath); err != nil {
			return "", err
		}
	}
	c, err := datastore.NewClient(sdk.ClientConfig{
		Path: r.cfg.PluginPath, Args: r.cfg.PluginArgs, Env: r.cfg.PluginEnv, SHA256: sum, Logger: r.cfg.PluginLogger,
	})
	if err != nil {
		return "", err
	}
	r.client, r.plugin = c, c
	return fmt.Sprintf("go-plugin handshake with AutoMTLS, transport protocol version %d, sha256 %s", c.ProtocolVersion(), sum), nil
}
