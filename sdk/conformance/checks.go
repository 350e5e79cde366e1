package conformance

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
	{name: "validate-tenant", description: "ValidateTenant accepts a valid tenant and rejects invalid names with INVALID_ARGUMENT naming tenant.schema or tenant.username", needs: []string{"probe"}, run: checkValidateTenant},
	{name: "ensure-tenant", description: "EnsureTenant twice gives the same connection", needs: []string{"validate-config"}, run: checkEnsureTenant},
	{name: "connect", description: "each tenant reads back what it writes with the returned connection", needs: []string{"ensure-tenant"}, run: checkConnect},
	{name: "isolation", description: "no tenant can read or change another tenant's data, for every ordered pair, names sharing a prefix included", needs: []string{"connect"}, run: checkIsolation},
	{name: "usage", description: "GetUsage grows after writes", needs: []string{"connect"}, run: checkUsage},
	{name: "export-import", description: "Export gives exactly the tenant's keys and values; Import into a fresh tenant preserves them", needs: []string{"connect"}, run: checkExportImport},
	{name: "optional-rpcs", description: "optional RPCs not announced answer UNIMPLEMENTED", needs: []string{"identity"}, run: checkOptionalRPCs},
	{name: "delete-tenant", description: "DeleteTenant removes user, grants and data, and nothing of any other tenant, and is idempotent", needs: []string{"ensure-tenant"}, run: checkDeleteTenant},
	{name: "ownership", description: "EnsureTenant refuses a schema or user owned by another tenant with ALREADY_EXISTS naming the owner and changes nothing; the refused twin's DeleteTenant removes nothing", needs: []string{"ensure-tenant"}, run: checkOwnership},
	{name: "residue", description: "after the last DeleteTenant, nothing is left of any tenant the kit provisioned", needs: []string{"ensure-tenant"}, run: checkResidue},
}

func checkIdentity(ctx context.Context, r *runner) (string, error) {
	info, err := r.plugin.GetPluginInfo(ctx)
	if err != nil {
		return "", err
	}
	r.report.Plugin = info
	// The capabilities first: later checks go by them even when this one fails, so that a wrong
	// driver name fails here alone rather than again as a capability seemingly missing.
	caps, err := r.plugin.Capabilities(ctx)
	if err != nil {
		return "", err
	}
	r.report.Capabilities = caps
	switch {
	case info.Name == "":
		return "", errors.New("GetPluginInfo: empty name")
	case info.VendorVersion == "":
		return "", errors.New("GetPluginInfo: empty vendor_version")
	case len(info.Drivers) == 0:
		return "", errors.New("GetPluginInfo: no drivers")
	case r.cfg.DataStore.Driver != "" && !slices.Contains(info.Drivers, r.cfg.DataStore.Driver):
		return "", fmt.Errorf("GetPluginInfo: plugin serves drivers %q, the configuration asks for driver %q: set the DataStore's driver to one the plugin serves (with sdk/testkit, Etcd.ConfigFor(%q) rather than Etcd.Config(), which says \"etcd\")",
			info.Drivers, r.cfg.DataStore.Driver, info.Drivers[0])
	}
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

// adminIdentity is the DataStore's own user, which no tenant may be given: the configured
// username, else, for a driver whose tenants authenticate with certificates (DIRECT_ETCD), the
// common name of the configured client certificate.
func adminIdentity(cfg datastore.Config, certificateUsers bool) string {
	if cfg.Username != "" {
		return cfg.Username
	}
	if !certificateUsers {
		return ""
	}
	block, _ := pem.Decode(cfg.ClientCert)
	if block == nil {
		return ""
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return ""
	}
	return cert.Subject.CommonName
}

func checkValidateTenant(ctx context.Context, r *runner) (string, error) {
	if err := r.needCap(datastore.CapabilityValidateTenant); err != nil {
		return "", err
	}
	valid := r.tenant("valid")
	if err := r.plugin.ValidateTenant(ctx, r.cfg.DataStore, valid); err != nil {
		return "", fmt.Errorf("ValidateTenant(schema %q, username %q) refused a valid tenant: %w", valid.Schema, valid.Username, err)
	}
	noSchema, noUser := valid, valid
	noSchema.Schema, noUser.Username = "", ""
	cases := []struct {
		call, field string
		t           datastore.Tenant
	}{
		{"ValidateTenant(empty schema)", "tenant.schema", noSchema},
		{"ValidateTenant(empty username)", "tenant.username", noUser},
	}
	if admin := adminIdentity(r.cfg.DataStore, r.hasCap(datastore.CapabilityDirectEtcd)); admin != "" {
		t := valid
		t.Username = admin
		cases = append(cases, struct {
			call, field string
			t           datastore.Tenant
		}{fmt.Sprintf("ValidateTenant(username %q, the DataStore's admin user)", admin), "tenant.username", t})
	}
	notes := []string{"a valid tenant accepted"}
	for _, c := range cases {
		note, err := wantFieldError(r.plugin.ValidateTenant(ctx, r.cfg.DataStore, c.t), c.call, c.field)
		if err != nil {
			return "", err
		}
		notes = append(notes, note)
	}
	return strings.Join(notes, "; "), nil
}

// tenantSet is the tenants isolation is checked between: "a" is a prefix of "ab" in their
// schema and user names, which catches grants and deletions by prefix without a separator.
var tenantSet = []string{"a", "ab", "b"}

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
	for _, id := range tenantSet[1:] {
		if _, err := r.ensure(ctx, id); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("same %s connection twice; tenants %s provisioned (schemas %q and %q share a prefix)",
		kind, strings.Join(tenantSet, ", "), r.tenant("a").Schema, r.tenant("ab").Schema), nil
}

func checkConnect(ctx context.Context, r *runner) (string, error) {
	var keys []string
	for _, id := range tenantSet {
		s, err := r.open(ctx, id)
		if err != nil {
			return "", err
		}
		key, value := s.Prefix()+"conformance/connect", []byte("hello from tenant "+id)
		if err := r.put(ctx, id, "conformance/connect", value); err != nil {
			return "", err
		}
		v, found, err := s.Get(ctx, key)
		if err != nil || !found || !bytes.Equal(v, value) {
			return "", fmt.Errorf("tenant %s: get %s: found=%v value=%q err=%v", id, key, found, v, err)
		}
		keys = append(keys, key)
	}
	return "each tenant wrote and read its key: " + strings.Join(keys, ", "), nil
}

func checkIsolation(ctx context.Context, r *runner) (string, error) {
	for _, id := range tenantSet {
		if err := r.put(ctx, id, "conformance/isolation", []byte("secret of tenant "+id+" only")); err != nil {
			return "", err
		}
	}
	if x, y, shared := r.sharedPrefix(tenantSet...); shared {
		return "", skipf("the backend gives tenants %s and %s the same prefix %q: a session cannot address another tenant's keys (give each session its own, as kine.Backend does)", x, y, r.sessions[x].Prefix())
	}
	denied, noEffect := 0, 0
	pairs := 0
	for _, x := range tenantSet {
		for _, y := range tenantSet {
			if x == y {
				continue
			}
			d, err := r.cannotReach(ctx, x, y, "conformance/isolation")
			if err != nil {
				return "", err
			}
			pairs++
			denied += d
			noEffect += 2 - d
		}
	}
	return fmt.Sprintf("%d ordered pairs of tenants %s: no tenant read or changed another's key (%d attempts denied, %d without effect)",
		pairs, strings.Join(tenantSet, ", "), denied, noEffect), nil
}

// sharedPrefix finds two tenants whose sessions have the same prefix: a Backend that roots every
// session at "/" cannot address another tenant's keys, so isolation cannot be checked with it.
func (r *runner) sharedPrefix(ids ...string) (x, y string, shared bool) {
	seen := map[string]string{}
	for _, id := range ids {
		p := r.sessions[id].Prefix()
		if other, ok := seen[p]; ok {
			return other, id, true
		}
		seen[p] = id
	}
	return "", "", false
}

// cannotReach checks that tenant x, with its own session, can neither read tenant y's key rel
// nor change it. It returns how many of the two attempts were denied with an error (the others
// had no effect).
func (r *runner) cannotReach(ctx context.Context, x, y, rel string) (int, error) {
	sx, sy := r.sessions[x], r.sessions[y]
	key, secret := sy.Prefix()+rel, r.data[y][rel]
	denied := 0
	v, found, readErr := sx.Get(ctx, key)
	if readErr == nil && found && bytes.Equal(v, secret) {
		return 0, fmt.Errorf("tenant %s read tenant %s's key %s", x, y, key)
	}
	if readErr != nil {
		denied++
	}
	writeErr := sx.Put(ctx, key, []byte("tenant "+x+" was here"))
	if writeErr != nil {
		denied++
	}
	v, found, err := sy.Get(ctx, key)
	if err != nil || !found {
		return 0, fmt.Errorf("tenant %s: get its own key %s after tenant %s tried to write it: found=%v err=%v", y, key, x, found, err)
	}
	if !bytes.Equal(v, secret) {
		return 0, fmt.Errorf("tenant %s overwrote tenant %s's key %s", x, y, key)
	}
	return denied, nil
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
	for i := range n {
		if err := r.put(ctx, "a", fmt.Sprintf("conformance/usage/%02d", i), bytes.Repeat([]byte{'u'}, size)); err != nil {
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
	for i := range r.cfg.ExportKeys {
		rel := fmt.Sprintf("conformance/export/%05d", i)
		v := []byte(fmt.Sprintf("value-%d", i))
		switch {
		case i%7 == 0:
			v = []byte{0, 0xff, byte(i), '\n', 0} // binary values survive the trip
		case i == 1:
			v = bytes.Repeat([]byte("large"), 50_000) // one value well past a typical chunk entry
		}
		if err := r.put(ctx, "a", rel, v); err != nil {
			return "", err
		}
	}
	// Tenant A holds what every earlier check wrote too: the export must be exactly that.
	want := r.data["a"]

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
	for _, rel := range slices.Sorted(maps.Keys(want)) {
		gv, ok := got[rel]
		if !ok {
			if _, abs := got[sa.Prefix()+rel]; abs {
				return "", fmt.Errorf("Export: key %q is not relative to the tenant prefix %q", sa.Prefix()+rel, sa.Prefix())
			}
			return "", fmt.Errorf("Export: key %q missing", rel)
		}
		if !bytes.Equal(gv, want[rel]) {
			return "", fmt.Errorf("Export: key %q has value %q, want %q", rel, trim(gv), trim(want[rel]))
		}
	}
	var extra []string
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		shown := extra[:min(len(extra), 5)]
		return "", fmt.Errorf("Export of tenant a gave %d keys it does not hold (another tenant's or the datastore's), e.g. %q; want exactly its %d keys",
			len(extra), shown, len(want))
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
	for _, rel := range slices.Sorted(maps.Keys(want)) {
		v := want[rel]
		gv, found, err := sc.Get(ctx, sc.Prefix()+rel)
		if err != nil || !found {
			return "", fmt.Errorf("tenant c: get %s: found=%v err=%v", sc.Prefix()+rel, found, err)
		}
		if !bytes.Equal(gv, v) {
			return "", fmt.Errorf("tenant c: key %q has value %q, want %q", rel, trim(gv), trim(v))
		}
		r.data["c"][rel] = bytes.Clone(v)
	}
	return fmt.Sprintf("exactly the tenant's %d keys exported in %d chunks and imported into a fresh tenant, every value equal", len(got), chunks), nil
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
	if !r.hasCap(datastore.CapabilityValidateTenant) {
		err := r.plugin.ValidateTenant(ctx, r.cfg.DataStore, r.tenant("a"))
		if !errors.Is(err, sdk.ErrUnimplemented) {
			return "", fmt.Errorf("ValidateTenant without capability VALIDATE_TENANT: want UNIMPLEMENTED, got %v", err)
		}
		notes = append(notes, "ValidateTenant answers UNIMPLEMENTED")
	}
	if len(notes) == 0 {
		return "USAGE, EXPORT_IMPORT and VALIDATE_TENANT announced: nothing optional is missing", nil
	}
	return strings.Join(notes, "; "), nil
}

func checkDeleteTenant(ctx context.Context, r *runner) (string, error) {
	a := r.tenant("a")
	read, err := r.delete(ctx, "a")
	if err != nil {
		return "", err
	}
	var notes []string
	insp, _ := r.backend.(Inspector)
	if insp != nil {
		if err := r.noResidue(ctx, insp, "a"); err != nil {
			return "", err
		}
		notes = append(notes, "no user, grant or key left")
	}
	key := ""
	if sa := r.sessions["a"]; sa != nil {
		key = sa.Prefix() + "conformance/connect"
		if v, found, err := sa.Get(ctx, key); err == nil && found {
			return "", fmt.Errorf("tenant a's credentials still read %s (%q) after DeleteTenant", key, trim(v))
		}
		notes = append(notes, "old credentials read nothing")
	}
	if err := r.plugin.DeleteTenant(ctx, r.cfg.DataStore, a); err != nil {
		return "", fmt.Errorf("second DeleteTenant: %w", err)
	}
	if err := r.plugin.DeleteTenant(ctx, r.cfg.DataStore, r.tenant("never-created")); err != nil {
		return "", fmt.Errorf("DeleteTenant of a tenant never created: %w", err)
	}
	n, err := r.othersIntact(ctx, "DeleteTenant of tenant a (again) and of a tenant never created")
	if err != nil {
		return "", err
	}
	read += n
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
			return "", fmt.Errorf("re-created tenant a: get %s: found=%v value=%q err=%v; want no data", key, found, trim(v), err)
		}
		n, err = r.delete(ctx, "a")
		if err != nil {
			return "", err
		}
		read += n
		notes = append(notes, "a re-created tenant starts empty")
	}
	// Then every other tenant, one at a time.
	var deleted []string
	for _, id := range slices.Sorted(maps.Keys(r.ensured)) {
		if r.deleted[id] {
			continue
		}
		n, err := r.delete(ctx, id)
		if err != nil {
			return "", err
		}
		read += n
		if insp != nil {
			if err := r.noResidue(ctx, insp, id); err != nil {
				return "", err
			}
		}
		deleted = append(deleted, id)
	}
	if len(deleted) > 0 {
		notes = append(notes, fmt.Sprintf("tenants %s deleted one by one", strings.Join(deleted, ", ")))
	}
	if read > 0 {
		notes = append(notes, fmt.Sprintf("after each DeleteTenant every other tenant read back its keys (%d reads)", read))
	}
	return strings.Join(notes, "; "), nil
}

// noResidue lists, with the Inspector, what is left of tenant id.
func (r *runner) noResidue(ctx context.Context, insp Inspector, id string) error {
	conn, ok := r.conns[id]
	if !ok {
		return nil
	}
	residue, err := insp.Residue(ctx, r.cfg.DataStore, r.tenant(id), conn)
	if err != nil {
		return fmt.Errorf("inspect residue of tenant %s: %w", id, err)
	}
	if len(residue) > 0 {
		return fmt.Errorf("DeleteTenant of tenant %s left behind: %s", id, strings.Join(residue, ", "))
	}
	return nil
}

// isOwned reports whether err refuses a slice owned by another tenant: *sdk.OwnedError through
// the transport, ALREADY_EXISTS from an in-process plugin that returns gRPC statuses.
func isOwned(err error) bool {
	var oe *sdk.OwnedError
	return errors.As(err, &oe) || status.Code(err) == codes.AlreadyExists
}

// twinCase is a tenant that asks for names another tenant owns.
type twinCase struct {
	id, what string
	// byUID: the twin has the owner's namespace and name, so only the uid can name the owner.
	byUID bool
}

func checkOwnership(ctx context.Context, r *runner) (string, error) {
	const rel = "conformance/owned"
	o := r.tenant("o")
	if _, err := r.ensure(ctx, "o"); err != nil {
		return "", err
	}
	withData := r.backend != nil
	if withData {
		if _, err := r.open(ctx, "o"); err != nil {
			return "", err
		}
		if err := r.put(ctx, "o", rel, []byte("secret of tenant o only")); err != nil {
			return "", err
		}
	}
	// f1 and f3 name the user and the schema the twins ask for besides tenant o's.
	f1, f3 := r.tenant("f1"), r.tenant("f3")
	define := func(id, schema, user string, sameName bool) {
		t := datastore.Tenant{Namespace: o.Namespace, Name: "conformance-" + r.id + "-" + id, Schema: schema, Username: user, UID: newUID()}
		if sameName {
			t.Name = o.Name
		}
		r.define(id, t)
	}
	define("twin-schema", o.Schema, f1.Username, false)
	define("twin-uid", o.Schema, o.Username, true)
	define("twin-user", f3.Schema, o.Username, false)
	twins := []twinCase{
		{id: "twin-schema", what: "tenant o's schema, another user"},
		{id: "twin-uid", what: "tenant o's namespace, name, schema and user, another uid", byUID: true},
		{id: "twin-user", what: "another schema, tenant o's user"},
	}
	for _, tw := range twins {
		t := r.tenant(tw.id)
		_, err := r.ensure(ctx, tw.id)
		if err == nil {
			msg := fmt.Sprintf("EnsureTenant of a twin of tenant o (%s: schema %q, username %q, uid %s) succeeded; want ALREADY_EXISTS naming the owner %s",
				tw.what, t.Schema, t.Username, t.UID, o.Owner())
			if withData {
				key := r.sessions["o"].Prefix() + rel
				if s, err := r.open(ctx, tw.id); err == nil {
					if v, found, err := s.Get(ctx, key); err == nil && found && bytes.Equal(v, r.data["o"][rel]) {
						msg += fmt.Sprintf("; with the connection it got, the twin reads tenant o's key %s", key)
					}
				}
			}
			return "", errors.New(msg)
		}
		if !isOwned(err) {
			return "", fmt.Errorf("EnsureTenant of a twin of tenant o (%s): want ALREADY_EXISTS naming the owner %s, got %w", tw.what, o.Owner(), err)
		}
		named := strings.Contains(err.Error(), o.UID) || (!tw.byUID && strings.Contains(err.Error(), o.Namespace+"/"+o.Name))
		if !named {
			return "", fmt.Errorf("EnsureTenant of a twin of tenant o (%s): ALREADY_EXISTS does not name the owner %s: %v", tw.what, o.Owner(), err)
		}
		if _, err := r.othersIntact(ctx, "the refused EnsureTenant of "+tw.id); err != nil {
			return "", err
		}
	}
	notes := []string{"twins refused with ALREADY_EXISTS naming the owner (same schema, another user; same schema and user, another uid; another schema, same user)"}

	// A refusal changes nothing: the user and the schema only a twin asked for are still free,
	// and their new owners reach nothing of tenant o, nor tenant o anything of theirs (its user
	// was not widened to the schema a twin asked for with it).
	if _, err := r.ensure(ctx, "f1"); err != nil {
		return "", fmt.Errorf("after twin-schema was refused, its username %q cannot be given to a new tenant: %w", f1.Username, err)
	}
	if _, err := r.ensure(ctx, "f3"); err != nil {
		return "", fmt.Errorf("after twin-user was refused, its schema %q cannot be given to a new tenant: %w", f3.Schema, err)
	}
	if withData {
		for _, id := range []string{"f1", "f3"} {
			if _, err := r.open(ctx, id); err != nil {
				return "", err
			}
			if err := r.put(ctx, id, rel, []byte("secret of tenant "+id+" only")); err != nil {
				return "", err
			}
		}
		if _, _, shared := r.sharedPrefix("o", "f1", "f3"); shared {
			notes = append(notes, "nothing changed: tenant o reads its data, the twins' other user and schema went to new tenants (the backend's sessions share a prefix: who reaches what was not checked)")
		} else {
			if _, err := r.cannotReach(ctx, "f1", "o", rel); err != nil {
				return "", fmt.Errorf("%w (tenant f1 has the username twin-schema asked for with tenant o's schema)", err)
			}
			if _, err := r.cannotReach(ctx, "o", "f3", rel); err != nil {
				return "", fmt.Errorf("%w (twin-user asked for tenant f3's schema with tenant o's username)", err)
			}
			notes = append(notes, "nothing changed: tenant o reads its data, the twins' other user and schema went to new tenants, and no user reaches beyond its own slice")
		}
	} else {
		notes = append(notes, "nothing changed: the twins' other user and schema went to new tenants (no backend: the tenants' data was not read)")
	}

	for _, tw := range twins {
		if err := r.plugin.DeleteTenant(ctx, r.cfg.DataStore, r.tenant(tw.id)); err != nil {
			return "", fmt.Errorf("DeleteTenant of twin %s, which owns nothing: %w; want success", tw.id, err)
		}
		r.deleted[tw.id] = true
		if _, err := r.othersIntact(ctx, "DeleteTenant of twin "+tw.id+" ("+tw.what+")"); err != nil {
			return "", err
		}
	}
	notes = append(notes, "the twins' DeleteTenant succeeded and removed nothing")
	for _, id := range []string{"f1", "f3", "o"} {
		if _, err := r.delete(ctx, id); err != nil {
			return "", err
		}
	}
	return strings.Join(notes, "; "), nil
}

func checkResidue(ctx context.Context, r *runner) (string, error) {
	insp, ok := r.backend.(Inspector)
	if !ok {
		return "", skipf("the backend cannot list what is left of a tenant (it does not implement conformance.Inspector)")
	}
	// A check that failed midway leaves tenants behind: delete them first.
	var leftover []string
	for _, id := range slices.Sorted(maps.Keys(r.ensured)) {
		if r.deleted[id] {
			continue
		}
		if err := r.plugin.DeleteTenant(ctx, r.cfg.DataStore, r.tenant(id)); err != nil {
			return "", fmt.Errorf("DeleteTenant(%s): %w", r.tenant(id).Name, err)
		}
		r.deleted[id] = true
		if _, ok := r.conns[id]; ok {
			leftover = append(leftover, id)
		}
	}
	var residue []string
	ids := slices.Sorted(maps.Keys(r.conns))
	for _, id := range ids {
		res, err := insp.Residue(ctx, r.cfg.DataStore, r.tenant(id), r.conns[id])
		if err != nil {
			return "", fmt.Errorf("inspect residue of tenant %s: %w", id, err)
		}
		for _, x := range res {
			residue = append(residue, "tenant "+id+": "+x)
		}
	}
	if len(residue) > 0 {
		return "", fmt.Errorf("after the last DeleteTenant, left behind: %s", strings.Join(residue, ", "))
	}
	note := fmt.Sprintf("no user, grant or key left of tenants %s", strings.Join(ids, ", "))
	if len(leftover) > 0 {
		note += fmt.Sprintf(" (%s deleted here, left by a failed check)", strings.Join(leftover, ", "))
	}
	return note, nil
}
