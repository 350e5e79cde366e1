package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// checks run in order; later ones build on the tenants and sessions of earlier ones.
var checks = []check{
	{name: "start", description: "the plugin starts and completes the handshake",
		run: func(_ context.Context, r *runner) (string, error) { return r.startPlugin() }},
	{name: "identity", description: "GetPluginInfo and GetCapabilities answer", needs: []string{"start"}, run: checkIdentity},
	{name: "probe", description: "Probe reports ready", needs: []string{"start"}, run: checkProbe},
	{name: "validate-config", description: "ValidateConfig accepts the configuration", needs: []string{"probe"}, run: checkValidateConfig},
	{name: "invalid-config", description: "ValidateConfig rejects empty endpoints with INVALID_ARGUMENT naming the field", needs: []string{"probe"}, run: checkInvalidConfig},
	{name: "invalid-tenant", description: "EnsureTenant rejects an empty schema with INVALID_ARGUMENT naming the field", needs: []string{"probe"}, run: checkInvalidTenant},
	{name: "ensure-tenant", description: "EnsureTenant twice gives the same connection", needs: []string{"validate-config"}, run: checkEnsureTenant},
	{name: "connect", description: "a tenant reads back what it writes with the returned connection", needs: []string{"ensure-tenant"}, run: checkConnect},
	{name: "isolation", description: "a tenant can neither read nor change another tenant's data", needs: []string{"connect"}, run: checkIsolation},
	{name: "usage", description: "GetUsage grows after writes", needs: []string{"connect"}, run: checkUsage},
	{name: "export-import", description: "Export then Import into a fresh tenant preserves every key and value", needs: []string{"connect"}, run: checkExportImport},
	{name: "optional-rpcs", description: "optional RPCs not announced answer UNIMPLEMENTED", needs: []string{"identity"}, run: checkOptionalRPCs},
	{name: "delete-tenant", description: "DeleteTenant removes user, grants and data, and is idempotent", needs: []string{"ensure-tenant"}, run: checkDeleteTenant},
}

func checkIdentity(ctx context.Context, r *runner) (string, error) {
	info, err := r.plugin.GetPluginInfo(ctx)
	if err != nil {
		return "", err
	}
	r.report.Plugin = info
	switch {
	case info.Name == "":
		return "", errors.New("GetPluginInfo: empty name")
	case info.VendorVersion == "":
		return "", errors.New("GetPluginInfo: empty vendor_version")
	case len(info.Drivers) == 0:
		return "", errors.New("GetPluginInfo: no drivers")
	case r.cfg.DataStore.Driver != "" && !slices.Contains(info.Drivers, r.cfg.DataStore.Driver):
		return "", fmt.Errorf("GetPluginInfo: plugin serves drivers %q, the configuration asks for %q", info.Drivers, r.cfg.DataStore.Driver)
	}
	caps, err := r.plugin.Capabilities(ctx)
	if err != nil {
		return "", err
	}
	r.report.Capabilities = caps
	return fmt.Sprintf("%s %s serves %q with capabilities %v", info.Name, info.VendorVersion, info.Drivers, caps), nil
}

// checkProbe polls: a plugin may legitimately answer not-ready while it warms up.
func checkProbe(ctx context.Context, r *runner) (string, error) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		res, err := r.plugin.Probe(ctx)
		if err != nil {
			return "", fmt.Errorf("Probe: %w", err)
		}
		if res.Ready {
			return "ready", nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("Probe: still not ready (%s): %w", res.Message, ctx.Err())
		case <-tick.C:
		}
	}
}

func checkValidateConfig(ctx context.Context, r *runner) (string, error) {
	if err := r.plugin.ValidateConfig(ctx, r.cfg.DataStore); err != nil {
		return "", err
	}
	return "configuration accepted, datastore reachable", nil
}

// wantFieldError checks that err is INVALID_ARGUMENT and names field.
func wantFieldError(err error, call, field string) (string, error) {
	var fe *sdk.FieldError
	if !errors.As(err, &fe) {
		return "", fmt.Errorf("%s: want INVALID_ARGUMENT naming %q, got %v", call, field, err)
	}
	if !strings.Contains(fe.Field, field) && !strings.Contains(fe.Message, field) {
		return "", fmt.Errorf("%s: INVALID_ARGUMENT does not name %q: %v", call, field, fe)
	}
	return fmt.Sprintf("%s: %v", call, fe), nil
}

func checkInvalidConfig(ctx context.Context, r *runner) (string, error) {
	bad := r.cfg.DataStore
	bad.Endpoints = nil
	return wantFieldError(r.plugin.ValidateConfig(ctx, bad), "ValidateConfig(no endpoints)", "endpoints")
}

func checkInvalidTenant(ctx context.Context, r *runner) (string, error) {
	t := r.tenant("invalid")
	t.Schema = ""
	_, err := r.plugin.EnsureTenant(ctx, r.cfg.DataStore, t)
	return wantFieldError(err, "EnsureTenant(empty schema)", "schema")
}

func checkEnsureTenant(ctx context.Context, r *runner) (string, error) {
	first, err := r.ensure(ctx, "a")
	if err != nil {
		return "", err
	}
	second, err := r.ensure(ctx, "a")
	if err != nil {
		return "", fmt.Errorf("second call: %w", err)
	}
	if !reflect.DeepEqual(first, second) {
		return "", fmt.Errorf("EnsureTenant is not idempotent: first %+v, then %+v", first.Redacted(), second.Redacted())
	}
	var kind string
	switch {
	case first.Etcd != nil && first.Kine != nil:
		return "", errors.New("EnsureTenant returned both an etcd connection and a kine sidecar")
	case first.Etcd != nil:
		kind = "etcd"
		if !r.hasCap(datastore.CapabilityDirectEtcd) {
			return "", errors.New("EnsureTenant returned an etcd connection but the plugin does not announce DIRECT_ETCD")
		}
		if len(first.Etcd.Servers) == 0 || first.Etcd.Prefix == "" || first.Etcd.ClientCertificate.CommonName == "" {
			return "", fmt.Errorf("incomplete etcd connection: %+v", *first.Etcd)
		}
		if r.backend == nil {
			r.backend = EtcdBackend{}
		}
	case first.Kine != nil:
		kind = "kine sidecar"
		if !r.hasCap(datastore.CapabilityKineSidecar) {
			return "", errors.New("EnsureTenant returned a kine sidecar but the plugin does not announce KINE_SIDECAR")
		}
	default:
		return "", errors.New("EnsureTenant returned no connection")
	}
	if _, err := r.ensure(ctx, "b"); err != nil {
		return "", err
	}
	return "same " + kind + " connection twice", nil
}

func checkConnect(ctx context.Context, r *runner) (string, error) {
	sa, err := r.open(ctx, "a")
	if err != nil {
		return "", err
	}
	if _, err := r.open(ctx, "b"); err != nil {
		return "", err
	}
	key := sa.Prefix() + "conformance/connect"
	if err := sa.Put(ctx, key, []byte("hello")); err != nil {
		return "", fmt.Errorf("tenant A: put %s: %w", key, err)
	}
	v, found, err := sa.Get(ctx, key)
	if err != nil || !found || string(v) != "hello" {
		return "", fmt.Errorf("tenant A: get %s: found=%v value=%q err=%v", key, found, v, err)
	}
	return "wrote and read " + key, nil
}

func checkIsolation(ctx context.Context, r *runner) (string, error) {
	sa, sb := r.sessions["a"], r.sessions["b"]
	key := sb.Prefix() + "conformance/isolation"
	secret := []byte("tenant-b-only")
	if err := sb.Put(ctx, key, secret); err != nil {
		return "", fmt.Errorf("tenant B: put %s: %w", key, err)
	}
	v, found, readErr := sa.Get(ctx, key)
	if readErr == nil && found && bytes.Equal(v, secret) {
		return "", fmt.Errorf("tenant A read tenant B's key %s", key)
	}
	writeErr := sa.Put(ctx, key, []byte("tenant-a-was-here"))
	v, found, err := sb.Get(ctx, key)
	if err != nil || !found {
		return "", fmt.Errorf("tenant B: get %s after tenant A's write: found=%v err=%v", key, found, err)
	}
	if !bytes.Equal(v, secret) {
		return "", fmt.Errorf("tenant A overwrote tenant B's key %s", key)
	}
	return fmt.Sprintf("tenant A reading %s: %s; writing it: %s", key, outcome(readErr), outcome(writeErr)), nil
}

func outcome(err error) string {
	if err != nil {
		return "denied (" + err.Error() + ")"
	}
	return "no effect on tenant B"
}

func checkUsage(ctx context.Context, r *runner) (string, error) {
	if err := r.needCap(datastore.CapabilityUsage); err != nil {
		return "", err
	}
	a := r.tenant("a")
	before, err := r.usageOf(ctx, a)
	if err != nil {
		return "", err
	}
	const n, size = 20, 1024
	sa := r.sessions["a"]
	for i := range n {
		if err := sa.Put(ctx, fmt.Sprintf("%sconformance/usage/%02d", sa.Prefix(), i), bytes.Repeat([]byte{'u'}, size)); err != nil {
			return "", err
		}
	}
	after, err := r.usageOf(ctx, a)
	if err != nil {
		return "", err
	}
	if before.Keys >= 0 && after.Keys < before.Keys+n {
		return "", fmt.Errorf("keys went from %d to %d after writing %d keys", before.Keys, after.Keys, n)
	}
	if before.Bytes >= 0 && after.Bytes < before.Bytes+n*size {
		return "", fmt.Errorf("bytes went from %d to %d after writing %d bytes", before.Bytes, after.Bytes, n*size)
	}
	return fmt.Sprintf("keys %d -> %d, bytes %d -> %d", before.Keys, after.Keys, before.Bytes, after.Bytes), nil
}

func (r *runner) usageOf(ctx context.Context, t datastore.Tenant) (datastore.Usage, error) {
	rep, err := r.plugin.GetUsage(ctx, r.cfg.DataStore, []datastore.Tenant{t})
	if err != nil {
		return datastore.Usage{}, err
	}
	for _, tu := range rep.Tenants {
		if tu.Tenant.Schema == t.Schema && tu.Tenant.Name == t.Name {
			if rep.Total.Keys >= 0 && tu.Usage.Keys > rep.Total.Keys {
				return tu.Usage, fmt.Errorf("tenant has %d keys, more than the datastore total %d", tu.Usage.Keys, rep.Total.Keys)
			}
			return tu.Usage, nil
		}
	}
	return datastore.Usage{}, fmt.Errorf("GetUsage did not report tenant %s", t.Name)
}

func checkExportImport(ctx context.Context, r *runner) (string, error) {
	if err := r.needCap(datastore.CapabilityExportImport); err != nil {
		return "", err
	}
	sa := r.sessions["a"]
	want := map[string][]byte{}
	for i := range r.cfg.ExportKeys {
		rel := fmt.Sprintf("conformance/export/%05d", i)
		v := []byte(fmt.Sprintf("value-%d", i))
		switch {
		case i%7 == 0:
			v = []byte{0, 0xff, byte(i), '\n', 0} // binary values survive the trip
		case i == 1:
			v = bytes.Repeat([]byte("large"), 50_000) // one value well past a typical chunk entry
		}
		want[rel] = v
		if err := sa.Put(ctx, sa.Prefix()+rel, v); err != nil {
			return "", fmt.Errorf("tenant A: put: %w", err)
		}
	}

	got := map[string][]byte{}
	chunks := 0
	for kvs, err := range r.plugin.Export(ctx, r.cfg.DataStore, r.tenant("a")) {
		if err != nil {
			return "", fmt.Errorf("Export: %w", err)
		}
		chunks++
		for _, kv := range kvs {
			got[string(kv.Key)] = kv.Value
		}
	}
	for rel, v := range want {
		gv, ok := got[rel]
		if !ok {
			if _, abs := got[sa.Prefix()+rel]; abs {
				return "", fmt.Errorf("Export: key %q is not relative to the tenant prefix %q", sa.Prefix()+rel, sa.Prefix())
			}
			return "", fmt.Errorf("Export: key %q missing", rel)
		}
		if !bytes.Equal(gv, v) {
			return "", fmt.Errorf("Export: key %q has value %q, want %q", rel, trim(gv), trim(v))
		}
	}

	if _, err := r.ensure(ctx, "c"); err != nil {
		return "", err
	}
	sc, err := r.open(ctx, "c")
	if err != nil {
		return "", err
	}
	// Piping one stream into the other is how the core migrates a tenant.
	res, err := r.plugin.Import(ctx, r.cfg.DataStore, r.tenant("c"), r.plugin.Export(ctx, r.cfg.DataStore, r.tenant("a")))
	if err != nil {
		return "", fmt.Errorf("Import: %w", err)
	}
	if res.Keys != int64(len(got)) {
		return "", fmt.Errorf("Import reports %d keys, Export gave %d", res.Keys, len(got))
	}
	for rel, v := range want {
		gv, found, err := sc.Get(ctx, sc.Prefix()+rel)
		if err != nil || !found {
			return "", fmt.Errorf("tenant C: get %s: found=%v err=%v", sc.Prefix()+rel, found, err)
		}
		if !bytes.Equal(gv, v) {
			return "", fmt.Errorf("tenant C: key %q has value %q, want %q", rel, trim(gv), trim(v))
		}
	}
	return fmt.Sprintf("%d keys exported in %d chunks and imported into a fresh tenant, every value equal", len(got), chunks), nil
}

func trim(b []byte) []byte {
	if len(b) > 32 {
		return append(b[:32:32], "..."...)
	}
	return b
}

func checkOptionalRPCs(ctx context.Context, r *runner) (string, error) {
	var notes []string
	if !r.hasCap(datastore.CapabilityUsage) {
		_, err := r.plugin.GetUsage(ctx, r.cfg.DataStore, nil)
		if !errors.Is(err, sdk.ErrUnimplemented) {
			return "", fmt.Errorf("GetUsage without capability USAGE: want UNIMPLEMENTED, got %v", err)
		}
		notes = append(notes, "GetUsage answers UNIMPLEMENTED")
	}
	if !r.hasCap(datastore.CapabilityExportImport) {
		var exportErr error
		for _, err := range r.plugin.Export(ctx, r.cfg.DataStore, r.tenant("a")) {
			exportErr = err
			break
		}
		if !errors.Is(exportErr, sdk.ErrUnimplemented) {
			return "", fmt.Errorf("Export without capability EXPORT_IMPORT: want UNIMPLEMENTED, got %v", exportErr)
		}
		_, err := r.plugin.Import(ctx, r.cfg.DataStore, r.tenant("a"), func(func([]datastore.KeyValue, error) bool) {})
		if !errors.Is(err, sdk.ErrUnimplemented) {
			return "", fmt.Errorf("Import without capability EXPORT_IMPORT: want UNIMPLEMENTED, got %v", err)
		}
		notes = append(notes, "Export and Import answer UNIMPLEMENTED")
	}
	if len(notes) == 0 {
		return "USAGE and EXPORT_IMPORT announced: nothing optional is missing", nil
	}
	return strings.Join(notes, "; "), nil
}

func checkDeleteTenant(ctx context.Context, r *runner) (string, error) {
	a, conn := r.tenant("a"), r.conns["a"]
	if err := r.plugin.DeleteTenant(ctx, r.cfg.DataStore, a); err != nil {
		return "", err
	}
	var notes []string
	if insp, ok := r.backend.(Inspector); ok {
		residue, err := insp.Residue(ctx, r.cfg.DataStore, a, conn)
		if err != nil {
			return "", fmt.Errorf("inspect residue: %w", err)
		}
		if len(residue) > 0 {
			return "", fmt.Errorf("DeleteTenant left behind: %s", strings.Join(residue, ", "))
		}
		notes = append(notes, "no user, grant or key left")
	}
	key := ""
	if sa := r.sessions["a"]; sa != nil {
		key = sa.Prefix() + "conformance/connect"
		if v, found, err := sa.Get(ctx, key); err == nil && found {
			return "", fmt.Errorf("tenant A's credentials still read %s (%q) after DeleteTenant", key, trim(v))
		}
		notes = append(notes, "old credentials read nothing")
	}
	if err := r.plugin.DeleteTenant(ctx, r.cfg.DataStore, a); err != nil {
		return "", fmt.Errorf("second DeleteTenant: %w", err)
	}
	if err := r.plugin.DeleteTenant(ctx, r.cfg.DataStore, r.tenant("never-created")); err != nil {
		return "", fmt.Errorf("DeleteTenant of a tenant never created: %w", err)
	}
	notes = append(notes, "idempotent")
	if key != "" {
		// Provisioning the tenant again must start from nothing.
		if _, err := r.ensure(ctx, "a"); err != nil {
			return "", err
		}
		sa, err := r.open(ctx, "a")
		if err != nil {
			return "", err
		}
		if v, found, err := sa.Get(ctx, key); err != nil || found {
			return "", fmt.Errorf("re-created tenant A: get %s: found=%v value=%q err=%v; want no data", key, found, trim(v), err)
		}
		if err := r.plugin.DeleteTenant(ctx, r.cfg.DataStore, a); err != nil {
			return "", err
		}
		notes = append(notes, "a re-created tenant starts empty")
	}
	return strings.Join(notes, "; "), nil
}
