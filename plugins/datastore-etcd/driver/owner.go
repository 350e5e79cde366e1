package driver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// Owner records live in etcd itself, next to the slices they describe, so that every plugin
// process (and every replica of the manager) sees the same ones. Their keys have no leading
// slash: a tenant's grant is the range of "/<schema>/", so no tenant can ever read or write them.
const (
	ownerKeys      = "kamaji/owners/"
	schemaOwnerKey = ownerKeys + "schema/"
	userOwnerKey   = ownerKeys + "user/"
)

func schemaKey(t datastore.Tenant) string { return schemaOwnerKey + t.Schema }
func userKey(t datastore.Tenant) string   { return userOwnerKey + t.Username }

// record is the value of both owner keys of a tenant: the owner and the schema and user it
// holds together, so that either key alone tells a twin apart.
type record struct {
	datastore.Owner
	Schema   string `json:"schema"`
	Username string `json:"username"`
}

func recordOf(t datastore.Tenant) record {
	return record{Owner: t.Owner(), Schema: t.Schema, Username: t.Username}
}

// ownedBy reports whether r names o as its owner. A record written for a caller that sent no
// uid (an older core) names its owner by namespace and name; the same TenantControlPlane,
// now with a uid, takes it over.
func (r record) ownedBy(o datastore.Owner) bool {
	if r.UID == "" {
		return r.Namespace == o.Namespace && r.Name == o.Name
	}
	return r.Same(o)
}

// stored is an owner key as read: absent, or its record and revision.
type stored struct {
	key     string
	present bool
	rev     int64 // ModRevision
	rec     record
	bad     error // the value does not parse
}

func (s stored) absent() bool { return !s.present }

// mine reports whether the record is t's: t's owner, with t's schema and user bound together.
func (s stored) mine(t datastore.Tenant) bool {
	return !s.absent() && s.bad == nil && s.rec.ownedBy(t.Owner()) && s.rec.Schema == t.Schema && s.rec.Username == t.Username
}

// readRecords reads t's schema and user owner keys at one revision.
func readRecords(ctx context.Context, cli *clientv3.Client, t datastore.Tenant) (schema, user stored, err error) {
	schema.key, user.key = schemaKey(t), userKey(t)
	resp, err := cli.Txn(ctx).Then(clientv3.OpGet(schema.key), clientv3.OpGet(user.key)).Commit()
	if err != nil {
		return schema, user, fmt.Errorf("read owner records: %w", err)
	}
	for i, s := range []*stored{&schema, &user} {
		kvs := resp.Responses[i].GetResponseRange().GetKvs()
		if len(kvs) == 0 {
			continue
		}
		s.present, s.rev = true, kvs[0].ModRevision
		if err := json.Unmarshal(kvs[0].Value, &s.rec); err != nil {
			s.bad = err
		}
	}
	return schema, user, nil
}

// refuse returns the sdk.Owned error for a record present but not t's, else nil.
func refuse(t datastore.Tenant, prefix string, s stored) error {
	if s.absent() || s.mine(t) {
		return nil
	}
	field, what, with := "tenant.username", fmt.Sprintf("etcd user %q", t.Username), fmt.Sprintf("prefix %q", "/"+s.rec.Schema+"/")
	if s.key == schemaKey(t) {
		field, what, with = "tenant.schema", fmt.Sprintf("etcd prefix %q", prefix), fmt.Sprintf("user %q", s.rec.Username)
	}
	if s.bad != nil {
		return sdk.Owned(field, "%s has an unreadable owner record %q (%v); it is not adopted", what, s.key, s.bad)
	}
	return sdk.Owned(field, "%s is owned by %s, with %s", what, s.rec.Owner, with)
}

// claim writes t's owner records where they are absent (or name t's owner without a uid), in
// one transaction that holds only if both keys are still as read: of two concurrent claims, at
// most one succeeds. false means the keys changed; read them again. recs are absent or t's
// (refuse said so).
func claim(ctx context.Context, cli *clientv3.Client, t datastore.Tenant, recs ...stored) (bool, error) {
	rec := recordOf(t)
	val, err := json.Marshal(rec)
	if err != nil {
		return false, err
	}
	var cmps []clientv3.Cmp
	var puts []clientv3.Op
	for _, s := range recs {
		if s.absent() {
			cmps = append(cmps, clientv3.Compare(clientv3.Version(s.key), "=", 0))
		} else {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.key), "=", s.rev))
		}
		if s.absent() || s.rec != rec {
			puts = append(puts, clientv3.OpPut(s.key, string(val)))
		}
	}
	if len(puts) == 0 {
		return true, nil
	}
	resp, err := cli.Txn(ctx).If(cmps...).Then(puts...).Commit()
	if err != nil {
		return false, fmt.Errorf("write owner records: %w", err)
	}
	return resp.Succeeded, nil
}

// release deletes those of recs that are t's, if they have not changed since read.
func release(ctx context.Context, cli *clientv3.Client, t datastore.Tenant, recs ...stored) error {
	var cmps []clientv3.Cmp
	var dels []clientv3.Op
	for _, s := range recs {
		if s.mine(t) {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.key), "=", s.rev))
			dels = append(dels, clientv3.OpDelete(s.key))
		}
	}
	if len(dels) == 0 {
		return nil
	}
	resp, err := cli.Txn(ctx).If(cmps...).Then(dels...).Commit()
	if err != nil {
		return fmt.Errorf("delete owner records: %w", err)
	}
	if !resp.Succeeded {
		return errors.New("owner records changed while the tenant was being deleted; retry")
	}
	return nil
}

// unrecorded is what etcd holds of a slice that has no owner record (made by a release that
// recorded none, or left half-provisioned): the role and user named after the tenant's user,
// and who else reaches the prefix.
type unrecorded struct {
	prefix     string
	roleExists bool
	rolePerms  []*authpb.Permission
	roleHeldBy []string // users other than the tenant's holding its role
	userExists bool
	userRoles  []string
	reaching   []string // roles other than the tenant's granting keys under the prefix
}

// inspect gathers what the legacy checks need. reaching is filled only with withSchema, since
// it may read every role (cluster.reaching).
func inspect(ctx context.Context, cli *clientv3.Client, c *cluster, t datastore.Tenant, prefix string, withSchema bool) (unrecorded, error) {
	u := unrecorded{prefix: prefix}
	switch r, err := cli.RoleGet(ctx, t.Username); {
	case errors.Is(err, rpctypes.ErrRoleNotFound):
	case err != nil:
		return u, fmt.Errorf("get role %q: %w", t.Username, err)
	default:
		u.roleExists, u.rolePerms = true, r.Perm
	}
	switch r, err := cli.UserGet(ctx, t.Username); {
	case errors.Is(err, rpctypes.ErrUserNotFound):
	case err != nil:
		return u, fmt.Errorf("get user %q: %w", t.Username, err)
	default:
		u.userExists, u.userRoles = true, r.Roles
	}
	if u.roleExists {
		users, err := cli.UserList(ctx)
		if err != nil {
			return u, fmt.Errorf("list users: %w", err)
		}
		for _, name := range users.Users {
			if name == t.Username {
				continue
			}
			r, err := cli.UserGet(ctx, name)
			if errors.Is(err, rpctypes.ErrUserNotFound) {
				continue
			}
			if err != nil {
				return u, fmt.Errorf("get user %q: %w", name, err)
			}
			if slices.Contains(r.Roles, t.Username) {
				u.roleHeldBy = append(u.roleHeldBy, name)
			}
		}
	}
	if withSchema {
		reaching, err := c.reaching(ctx, cli, prefix, t.Username)
		if err != nil {
			return u, err
		}
		u.reaching = reaching
	}
	return u, nil
}

// reaches reports whether p grants some key under prefix. A grant strictly wider than the
// prefix (an operator's backup or monitoring role) covers every tenant alike and is no tenant's:
// it does not make the slice anyone's.
func reaches(p *authpb.Permission, prefix string) bool {
	lo, hi := []byte(prefix), []byte(clientv3.GetPrefixRangeEnd(prefix))
	start, end := p.Key, p.RangeEnd
	if len(end) == 0 { // one key
		return bytes.Compare(start, lo) >= 0 && bytes.Compare(start, hi) < 0
	}
	open := bytes.Equal(end, []byte{0}) // to the end of the keyspace
	if bytes.Compare(start, hi) >= 0 || (!open && bytes.Compare(end, lo) <= 0) {
		return false
	}
	startCmp, endCmp := bytes.Compare(start, lo), 1
	if !open {
		endCmp = bytes.Compare(end, hi)
	}
	wider := startCmp <= 0 && endCmp >= 0 && (startCmp < 0 || endCmp > 0)
	return !wider
}

// roleErr says why the tenant's role cannot be taken as the tenant's own: it grants something
// else, or other users hold it.
func (u unrecorded) roleErr(t datastore.Tenant, field string) error {
	switch {
	case !u.roleExists:
		return nil
	case len(u.rolePerms) > 0 && !onlyGrants(u.rolePerms, grant(u.prefix)):
		return sdk.Owned(field, "etcd role %q has no owner record and grants %s, not only %q", t.Username, describe(u.rolePerms), u.prefix)
	case len(u.roleHeldBy) > 0:
		return sdk.Owned(field, "etcd role %q has no owner record and is also held by user(s) %q", t.Username, u.roleHeldBy)
	}
	return nil
}

// userErr says why the unrecorded user (and its role) cannot be adopted, or nil.
func (u unrecorded) userErr(t datastore.Tenant) error {
	for _, r := range u.userRoles {
		if r != t.Username {
			return sdk.Owned("tenant.username", "etcd user %q has no owner record and holds role %q besides its own", t.Username, r)
		}
	}
	return u.roleErr(t, "tenant.username")
}

// schemaErr says why the unrecorded prefix cannot be adopted: another role reaches it, or the
// tenant's role does and cannot be taken as the tenant's.
func (u unrecorded) schemaErr(t datastore.Tenant) error {
	if len(u.reaching) > 0 {
		return sdk.Owned("tenant.schema", "etcd prefix %q has no owner record and role(s) %q already grant keys under it", u.prefix, u.reaching)
	}
	if slices.ContainsFunc(u.rolePerms, func(p *authpb.Permission) bool { return reaches(p, u.prefix) }) {
		return u.roleErr(t, "tenant.schema")
	}
	return nil
}

func describe(perms []*authpb.Permission) string {
	var out []string
	for _, p := range perms {
		out = append(out, fmt.Sprintf("%s [%q, %q)", p.PermType, p.Key, p.RangeEnd))
	}
	return strings.Join(out, ", ")
}
