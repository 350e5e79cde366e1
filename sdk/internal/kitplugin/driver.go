package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"
	"unicode"

	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

const (
	// ownerPrefix holds the owner records. Tenant prefixes are "/<schema>/": a key that does not
	// start with "/" is inside none of them.
	ownerPrefix = "kamaji-kitplugin/owner/"
	// chunkKeys and chunkBytes bound an Export chunk; small, so the kit's export crosses chunks.
	chunkKeys  = 100
	chunkBytes = 2 << 20
	// importOps and importBytes bound an Import transaction, under etcd's defaults (128
	// operations, 1.5 MiB requests).
	importOps   = 64
	importBytes = 1 << 20
	maxNameLen  = 255
)

func schemaKey(schema string) string { return ownerPrefix + "schema/" + schema }
func userKey(user string) string     { return ownerPrefix + "user/" + user }

type driver struct{ broken string }

var _ datastore.Plugin = (*driver)(nil)

func (d *driver) GetPluginInfo(context.Context) (datastore.PluginInfo, error) {
	v := "1.0.0"
	if d.broken != "" {
		v += "-" + d.broken
	}
	return datastore.PluginInfo{Name: "kitplugin", VendorVersion: v, Drivers: []string{"etcd"}}, nil
}

func (d *driver) Capabilities(context.Context) ([]datastore.Capability, error) {
	return []datastore.Capability{
		datastore.CapabilityMultiTenant, datastore.CapabilityNeedsCAKey, datastore.CapabilityDirectEtcd,
		datastore.CapabilityExportImport, datastore.CapabilityUsage, datastore.CapabilityValidateTenant,
	}, nil
}

func (d *driver) Probe(context.Context) (datastore.ProbeResult, error) {
	return datastore.ProbeResult{Ready: true}, nil
}

func servers(cfg datastore.Config) ([]string, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, sdk.InvalidField("endpoints", "at least one endpoint is required")
	}
	srv := make([]string, len(cfg.Endpoints))
	for i, ep := range cfg.Endpoints {
		if ep == "" {
			return nil, sdk.InvalidField(fmt.Sprintf("endpoints[%d]", i), "empty")
		}
		srv[i] = ep
		if !strings.Contains(ep, "://") {
			srv[i] = "https://" + ep
		}
	}
	return srv, nil
}

// client connects with the DataStore's admin credentials. A plugin would cache it; a test
// plugin can afford one per call.
func client(cfg datastore.Config) (*clientv3.Client, []string, error) {
	srv, err := servers(cfg)
	if err != nil {
		return nil, nil, err
	}
	tlsCfg, err := cfg.ClientTLS("")
	if err != nil {
		return nil, nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: srv, TLS: tlsCfg, Username: cfg.Username, Password: cfg.Password,
		DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, nil, status.Errorf(codes.Unavailable, "endpoints: %v", err)
	}
	return cli, srv, nil
}

func (d *driver) ValidateConfig(ctx context.Context, cfg datastore.Config) error {
	cli, srv, err := client(cfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	auth, err := cli.AuthStatus(ctx)
	if err != nil {
		return status.Errorf(codes.Unavailable, "endpoints: etcd at %v does not answer: %v", srv, err)
	}
	if !auth.Enabled {
		return status.Errorf(codes.FailedPrecondition, "etcd at %v has authentication disabled", srv)
	}
	return nil
}

// adminIdentities are the DataStore's own user names, which no tenant may take.
func adminIdentities(cfg datastore.Config) []string {
	ids := []string{"root"}
	if cfg.Username != "" {
		ids = append(ids, cfg.Username)
	}
	if block, _ := pem.Decode(cfg.ClientCert); block != nil {
		if cert, err := x509.ParseCertificate(block.Bytes); err == nil && cert.Subject.CommonName != "" {
			ids = append(ids, cert.Subject.CommonName)
		}
	}
	return ids
}

func checkName(field, s string) error {
	switch {
	case s == "":
		return sdk.InvalidField(field, "required")
	case len(s) > maxNameLen:
		return sdk.InvalidField(field, "%d bytes, at most %d", len(s), maxNameLen)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return sdk.InvalidField(field, "must not contain control characters, got %q", s)
	}
	return nil
}

// checkTenant applies the name rules and returns t's prefix, "/<schema>/".
func checkTenant(cfg datastore.Config, t datastore.Tenant) (string, error) {
	if err := checkName("tenant.schema", t.Schema); err != nil {
		return "", err
	}
	if strings.Contains(t.Schema, "/") || t.Schema == "." || t.Schema == ".." {
		return "", sdk.InvalidField("tenant.schema", "must be one path segment, got %q", t.Schema)
	}
	if err := checkName("tenant.username", t.Username); err != nil {
		return "", err
	}
	for _, admin := range adminIdentities(cfg) {
		if t.Username == admin {
			return "", sdk.InvalidField("tenant.username", "must not be %q, the DataStore's own user", admin)
		}
	}
	return "/" + t.Schema + "/", nil
}

func (d *driver) ValidateTenant(_ context.Context, cfg datastore.Config, t datastore.Tenant) error {
	_, err := checkTenant(cfg, t)
	return err
}

// grant is the only permission a tenant role holds: read-write on its prefix.
func grant(prefix string) *authpb.Permission {
	return &authpb.Permission{PermType: authpb.READWRITE, Key: []byte(prefix), RangeEnd: []byte(clientv3.GetPrefixRangeEnd(prefix))}
}

func onlyGrants(perms []*authpb.Permission, want *authpb.Permission) bool {
	return len(perms) == 1 && perms[0].PermType == want.PermType &&
		bytes.Equal(perms[0].Key, want.Key) && bytes.Equal(perms[0].RangeEnd, want.RangeEnd)
}

// record is an owner record as read, with its revision (0: absent) for the Txn that changes it.
type record struct {
	key   string
	owner *datastore.Owner
	rev   int64
}

func readRecord(ctx context.Context, cli *clientv3.Client, key string) (record, error) {
	r, err := cli.Get(ctx, key)
	if err != nil {
		return record{}, fmt.Errorf("read owner record %q: %w", key, err)
	}
	rec := record{key: key}
	if len(r.Kvs) == 0 {
		return rec, nil
	}
	var o datastore.Owner
	if err := json.Unmarshal(r.Kvs[0].Value, &o); err != nil {
		return record{}, fmt.Errorf("owner record %q: %w", key, err)
	}
	rec.owner, rec.rev = &o, r.Kvs[0].ModRevision
	return rec, nil
}

// mine reports whether t may use what rec records: nobody or t itself.
func (rec record) mine(t datastore.Tenant) bool { return rec.owner == nil || rec.owner.Same(t.Owner()) }

// unrecordedFits checks an etcd user and role that no record claims: t may take them only if they
// hold nothing beyond t's prefix (a tenant half-provisioned by t itself). Anything else belongs
// to someone: taking it would widen it.
func unrecordedFits(ctx context.Context, cli *clientv3.Client, user, prefix string) error {
	u, err := cli.UserGet(ctx, user)
	switch {
	case errors.Is(err, rpctypes.ErrUserNotFound):
	case err != nil:
		return fmt.Errorf("get user %q: %w", user, err)
	default:
		for _, role := range u.Roles {
			if role != user {
				return sdk.Owned("tenant.username", "etcd user %q exists, recorded for no tenant, and holds role %q", user, role)
			}
		}
	}
	r, err := cli.RoleGet(ctx, user)
	switch {
	case errors.Is(err, rpctypes.ErrRoleNotFound):
	case err != nil:
		return fmt.Errorf("get role %q: %w", user, err)
	case len(r.Perm) > 0 && !onlyGrants(r.Perm, grant(prefix)):
		return sdk.Owned("tenant.username", "etcd role %q exists, recorded for no tenant, and grants other keys", user)
	}
	return nil
}

// claim records t as the owner of its schema and user, in one Txn guarded by what it read, after
// refusing anything recorded for another owner.
func claim(ctx context.Context, cli *clientv3.Client, t datastore.Tenant, prefix string) error {
	value, err := json.Marshal(t.Owner())
	if err != nil {
		return err
	}
	for range 5 {
		schema, err := readRecord(ctx, cli, schemaKey(t.Schema))
		if err != nil {
			return err
		}
		user, err := readRecord(ctx, cli, userKey(t.Username))
		if err != nil {
			return err
		}
		if !schema.mine(t) {
			return sdk.Owned("tenant.schema", "etcd prefix %q is owned by %s", prefix, *schema.owner)
		}
		if !user.mine(t) {
			return sdk.Owned("tenant.username", "etcd user %q is owned by %s", t.Username, *user.owner)
		}
		if schema.owner != nil && user.owner != nil {
			return nil
		}
		if user.owner == nil {
			if err := unrecordedFits(ctx, cli, t.Username, prefix); err != nil {
				return err
			}
		}
		r, err := cli.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(schema.key), "=", schema.rev),
			clientv3.Compare(clientv3.ModRevision(user.key), "=", user.rev),
		).Then(
			clientv3.OpPut(schema.key, string(value)),
			clientv3.OpPut(user.key, string(value)),
		).Commit()
		if err != nil {
			return fmt.Errorf("claim schema %q and user %q: %w", t.Schema, t.Username, err)
		}
		if r.Succeeded {
			return nil
		}
	}
	return status.Errorf(codes.Aborted, "schema %q and user %q: owner records kept changing", t.Schema, t.Username)
}

// EnsureTenant claims the schema and the user, then creates, in this order so that a user never
// holds more than intended, a role named after the user with read-write on "/<schema>/", the
// user (certificate authentication only) and the role binding.
func (d *driver) EnsureTenant(ctx context.Context, cfg datastore.Config, t datastore.Tenant) (datastore.Connection, error) {
	prefix, err := checkTenant(cfg, t)
	if err != nil {
		return datastore.Connection{}, err
	}
	cli, srv, err := client(cfg)
	if err != nil {
		return datastore.Connection{}, err
	}
	defer cli.Close()
	if d.broken != noOwnership {
		if err := claim(ctx, cli, t, prefix); err != nil {
			return datastore.Connection{}, err
		}
	}

	role, want := t.Username, grant(prefix)
	if _, err := cli.RoleAdd(ctx, role); err != nil && !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
		return datastore.Connection{}, fmt.Errorf("add role %q: %w", role, err)
	}
	r, err := cli.RoleGet(ctx, role)
	if err != nil {
		return datastore.Connection{}, fmt.Errorf("get role %q: %w", role, err)
	}
	if !onlyGrants(r.Perm, want) {
		if len(r.Perm) > 0 {
			return datastore.Connection{}, sdk.Owned("tenant.username", "etcd role %q grants other keys", role)
		}
		if _, err := cli.RoleGrantPermission(ctx, role, prefix, string(want.RangeEnd), clientv3.PermissionType(want.PermType)); err != nil {
			return datastore.Connection{}, fmt.Errorf("grant %q to role %q: %w", prefix, role, err)
		}
	}
	if _, err := cli.UserAddWithOptions(ctx, t.Username, "", &clientv3.UserAddOptions{NoPassword: true}); err != nil &&
		!errors.Is(err, rpctypes.ErrUserAlreadyExist) {
		return datastore.Connection{}, fmt.Errorf("add user %q: %w", t.Username, err)
	}
	u, err := cli.UserGet(ctx, t.Username)
	if err != nil {
		return datastore.Connection{}, fmt.Errorf("get user %q: %w", t.Username, err)
	}
	if len(u.Roles) == 0 {
		if _, err := cli.UserGrantRole(ctx, t.Username, role); err != nil {
			return datastore.Connection{}, fmt.Errorf("grant role %q to user %q: %w", role, t.Username, err)
		}
	}
	if d.broken == grantOlder {
		// The bug: every older tenant's role too.
		older, err := cli.Get(ctx, ownerPrefix+"user/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			return datastore.Connection{}, err
		}
		for _, kv := range older.Kvs {
			if other := strings.TrimPrefix(string(kv.Key), ownerPrefix+"user/"); other != t.Username {
				_, _ = cli.UserGrantRole(ctx, t.Username, other)
			}
		}
	}
	return datastore.Connection{Etcd: &datastore.EtcdConnection{
		Servers:           srv,
		Prefix:            prefix,
		ClientCertificate: datastore.CertificateRequest{CommonName: t.Username},
	}}, nil
}

// DeleteTenant removes what t owns, and only that: its user and role (revoking access first),
// then its keys, then the owner records, each removed only if unchanged since read. A schema or
// user recorded for another owner is left alone; one recorded for nobody is t's if it holds
// nothing beyond t's prefix (a half-provisioned tenant).
func (d *driver) DeleteTenant(ctx context.Context, cfg datastore.Config, t datastore.Tenant) error {
	prefix, err := checkTenant(cfg, t)
	if err != nil {
		return err
	}
	cli, _, err := client(cfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	switch d.broken {
	case deleteAll:
		return wipeAll(ctx, cli, t, prefix)
	case noOwnership:
		return deleteSlice(ctx, cli, t.Username, prefix, true, true)
	}
	schema, err := readRecord(ctx, cli, schemaKey(t.Schema))
	if err != nil {
		return err
	}
	user, err := readRecord(ctx, cli, userKey(t.Username))
	if err != nil {
		return err
	}
	userMine, schemaMine := user.mine(t), schema.mine(t)
	if userMine && user.owner == nil && unrecordedFits(ctx, cli, t.Username, prefix) != nil {
		userMine = false
	}
	if err := deleteSlice(ctx, cli, t.Username, prefix, userMine, schemaMine); err != nil {
		return err
	}
	for _, rec := range []record{user, schema} {
		if rec.owner == nil || !rec.owner.Same(t.Owner()) {
			continue
		}
		if _, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(rec.key), "=", rec.rev)).
			Then(clientv3.OpDelete(rec.key)).Commit(); err != nil {
			return fmt.Errorf("delete owner record %q: %w", rec.key, err)
		}
	}
	return nil
}

func deleteSlice(ctx context.Context, cli *clientv3.Client, user, prefix string, withUser, withKeys bool) error {
	if withUser {
		if _, err := cli.UserDelete(ctx, user); err != nil && !errors.Is(err, rpctypes.ErrUserNotFound) {
			return fmt.Errorf("delete user %q: %w", user, err)
		}
		if _, err := cli.RoleDelete(ctx, user); err != nil && !errors.Is(err, rpctypes.ErrRoleNotFound) {
			return fmt.Errorf("delete role %q: %w", user, err)
		}
	}
	if withKeys {
		if _, err := cli.Delete(ctx, prefix, clientv3.WithPrefix()); err != nil {
			return fmt.Errorf("delete keys under %q: %w", prefix, err)
		}
	}
	return nil
}

// wipeAll is the delete-all bug: it deletes every recorded tenant, not just t.
func wipeAll(ctx context.Context, cli *clientv3.Client, t datastore.Tenant, prefix string) error {
	recs, err := cli.Get(ctx, ownerPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return err
	}
	for _, kv := range recs.Kvs {
		k := strings.TrimPrefix(string(kv.Key), ownerPrefix)
		if s, ok := strings.CutPrefix(k, "schema/"); ok {
			err = deleteSlice(ctx, cli, "", "/"+s+"/", false, true)
		} else if u, ok := strings.CutPrefix(k, "user/"); ok {
			err = deleteSlice(ctx, cli, u, "", true, false)
		}
		if err != nil {
			return err
		}
	}
	if _, err := cli.Delete(ctx, ownerPrefix, clientv3.WithPrefix()); err != nil {
		return err
	}
	return deleteSlice(ctx, cli, t.Username, prefix, true, true)
}

// Export yields t's keys, relative to its prefix, from one revision.
func (d *driver) Export(ctx context.Context, cfg datastore.Config, t datastore.Tenant) iter.Seq2[[]datastore.KeyValue, error] {
	return func(yield func([]datastore.KeyValue, error) bool) {
		prefix, err := checkTenant(cfg, t)
		if err != nil {
			yield(nil, err)
			return
		}
		cli, _, err := client(cfg)
		if err != nil {
			yield(nil, err)
			return
		}
		defer cli.Close()
		from, rangeOpt := prefix, clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix))
		if d.broken == exportAll {
			// The bug: from the start of the keyspace to its end.
			from, rangeOpt = "\x00", clientv3.WithFromKey()
		}
		var rev int64
		var chunk []datastore.KeyValue
		size := 0
		for {
			opts := []clientv3.OpOption{rangeOpt, clientv3.WithLimit(chunkKeys), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
			if rev > 0 {
				opts = append(opts, clientv3.WithRev(rev))
			}
			r, err := cli.Get(ctx, from, opts...)
			if err != nil {
				yield(nil, fmt.Errorf("read keys under %q: %w", prefix, err))
				return
			}
			if rev == 0 {
				rev = r.Header.Revision
			}
			for _, kv := range r.Kvs {
				chunk = append(chunk, datastore.KeyValue{Key: []byte(strings.TrimPrefix(string(kv.Key), prefix)), Value: kv.Value})
				size += len(kv.Key) + len(kv.Value)
				if len(chunk) >= chunkKeys || size >= chunkBytes {
					if !yield(chunk, nil) {
						return
					}
					chunk, size = nil, 0
				}
			}
			if !r.More || len(r.Kvs) == 0 {
				break
			}
			from = string(r.Kvs[len(r.Kvs)-1].Key) + "\x00"
		}
		if len(chunk) > 0 {
			yield(chunk, nil)
		}
	}
}

// Import writes the chunks under t's prefix, overwriting, in bounded transactions.
func (d *driver) Import(ctx context.Context, cfg datastore.Config, t datastore.Tenant, chunks iter.Seq2[[]datastore.KeyValue, error]) (datastore.ImportResult, error) {
	var res datastore.ImportResult
	prefix, err := checkTenant(cfg, t)
	if err != nil {
		return res, err
	}
	cli, _, err := client(cfg)
	if err != nil {
		return res, err
	}
	defer cli.Close()
	var ops []clientv3.Op
	size := 0
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		_, err := cli.Txn(ctx).Then(ops...).Commit()
		ops, size = nil, 0
		return err
	}
	for kvs, err := range chunks {
		if err != nil {
			return res, err
		}
		for _, kv := range kvs {
			n := len(prefix) + len(kv.Key) + len(kv.Value)
			if len(ops) >= importOps || size+n > importBytes {
				if err := flush(); err != nil {
					return res, err
				}
			}
			ops = append(ops, clientv3.OpPut(prefix+string(kv.Key), string(kv.Value)))
			size += n
			res.Keys++
			res.Bytes += int64(len(kv.Key) + len(kv.Value))
		}
	}
	return res, flush()
}

// GetUsage counts each tenant's keys and bytes, and the whole keyspace.
func (d *driver) GetUsage(ctx context.Context, cfg datastore.Config, tenants []datastore.Tenant) (datastore.UsageReport, error) {
	cli, srv, err := client(cfg)
	if err != nil {
		return datastore.UsageReport{}, err
	}
	defer cli.Close()
	var rep datastore.UsageReport
	for _, t := range tenants {
		prefix, err := checkTenant(cfg, t)
		if err != nil {
			return rep, err
		}
		r, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
		if err != nil {
			return rep, err
		}
		u := datastore.Usage{Keys: int64(len(r.Kvs))}
		for _, kv := range r.Kvs {
			u.Bytes += int64(len(kv.Key) + len(kv.Value))
		}
		rep.Tenants = append(rep.Tenants, datastore.TenantUsage{Tenant: t, Usage: u})
	}
	all, err := cli.Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithCountOnly())
	if err != nil {
		return rep, err
	}
	rep.Total = datastore.Usage{Keys: all.Count, Bytes: -1}
	if st, err := cli.Status(ctx, srv[0]); err == nil {
		rep.Total.Bytes = st.DbSize
	}
	return rep, nil
}
