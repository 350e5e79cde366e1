package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// Owner records live in etcd, next to what they describe, so every plugin process sees the same
// ones. Their keys have no leading '/': a tenant's grant is the range of "/<schema>/", which
// never covers them, so no tenant can read or change them.
const ownerKeys = "example-etcd/owners/"

func schemaKey(t datastore.Tenant) string { return ownerKeys + "schema/" + t.Schema }
func userKey(t datastore.Tenant) string   { return ownerKeys + "user/" + t.Username }

// record is the value of both of a tenant's owner keys: its owner and the schema and user it
// holds together, so either key alone tells a twin apart.
type record struct {
	datastore.Owner
	Schema   string `json:"schema"`
	Username string `json:"username"`
}

// slot is an owner key as read: rec is nil when the key is absent.
type slot struct {
	key string
	rec *record
	rev int64 // ModRevision, for the transaction that changes the key
}

// ours reports whether the slot records t itself: its owner (the uid decides), with t's schema
// and user.
func (s slot) ours(t datastore.Tenant) bool {
	return s.rec != nil && s.rec.Same(t.Owner()) && s.rec.Schema == t.Schema && s.rec.Username == t.Username
}

// readSlots reads t's schema and user owner keys at one revision.
func readSlots(ctx context.Context, cli *clientv3.Client, t datastore.Tenant) (schema, user slot, err error) {
	schema.key, user.key = schemaKey(t), userKey(t)
	resp, err := cli.Txn(ctx).Then(clientv3.OpGet(schema.key), clientv3.OpGet(user.key)).Commit()
	if err != nil {
		return schema, user, fmt.Errorf("read owner records: %w", err)
	}
	for i, s := range []*slot{&schema, &user} {
		kvs := resp.Responses[i].GetResponseRange().GetKvs()
		if len(kvs) == 0 {
			continue
		}
		s.rec, s.rev = &record{}, kvs[0].ModRevision
		if err := json.Unmarshal(kvs[0].Value, s.rec); err != nil {
			return schema, user, fmt.Errorf("owner record %q: %w", s.key, err)
		}
	}
	return schema, user, nil
}

// refuse returns the ALREADY_EXISTS error for a slot recorded for someone other than t, naming
// the owner (the core shows the message in the TenantControlPlane's DataStoreReady condition).
func refuse(t datastore.Tenant, prefix string, schema, user slot) error {
	if schema.rec != nil && !schema.ours(t) {
		return sdk.Owned("tenant.schema", "etcd prefix %q is owned by %s, with user %q", prefix, schema.rec.Owner, schema.rec.Username)
	}
	if user.rec != nil && !user.ours(t) {
		return sdk.Owned("tenant.username", "etcd user %q is owned by %s, with prefix %q", t.Username, user.rec.Owner, "/"+user.rec.Schema+"/")
	}
	return nil
}

// unclaimed checks what etcd holds of a schema or user that no record names. This driver records
// before it creates anything, so an etcd user or role of the tenant's name, keys under its
// prefix, or a role granting keys under it, were made by someone else: taking them over would
// give the tenant what is not its own, or someone else the tenant's data.
func unclaimed(ctx context.Context, cli *clientv3.Client, t datastore.Tenant, prefix string, schema, user slot) error {
	if user.rec == nil {
		switch _, err := cli.UserGet(ctx, t.Username); {
		case err == nil:
			return sdk.Owned("tenant.username", "etcd user %q exists and no owner record names it: it is not taken over", t.Username)
		case !errors.Is(err, rpctypes.ErrUserNotFound):
			return fmt.Errorf("get user %q: %w", t.Username, err)
		}
		switch _, err := cli.RoleGet(ctx, t.Username); {
		case err == nil:
			return sdk.Owned("tenant.username", "etcd role %q exists and no owner record names it: it is not taken over", t.Username)
		case !errors.Is(err, rpctypes.ErrRoleNotFound):
			return fmt.Errorf("get role %q: %w", t.Username, err)
		}
	}
	if schema.rec == nil {
		n, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return fmt.Errorf("count keys under %q: %w", prefix, err)
		}
		if n.Count > 0 {
			return sdk.Owned("tenant.schema", "%d keys exist under etcd prefix %q and no owner record names them", n.Count, prefix)
		}
		// A role granting keys inside the prefix was made for it. One granting a wider range (an
		// operator's backup or monitoring role) covers every tenant alike and is nobody's slice.
		roles, err := cli.RoleList(ctx)
		if err != nil {
			return fmt.Errorf("list roles: %w", err)
		}
		for _, name := range roles.Roles {
			r, err := cli.RoleGet(ctx, name)
			if errors.Is(err, rpctypes.ErrRoleNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("get role %q: %w", name, err)
			}
			for _, p := range r.Perm {
				if strings.HasPrefix(string(p.Key), prefix) {
					return sdk.Owned("tenant.schema", "etcd role %q grants %q and no owner record names the prefix %q", name, p.Key, prefix)
				}
			}
		}
	}
	return nil
}

// claimAttempts bounds the read-check-write rounds of claim; a round is lost only when another
// call changes the same owner keys in between.
const claimAttempts = 3

// claim makes t the recorded owner of its schema and user, or returns the error naming who is.
// Both keys are written in one transaction that holds only if neither changed since read: of
// two concurrent claims on a name, one wins and the other reads the winner's record.
func claim(ctx context.Context, cli *clientv3.Client, t datastore.Tenant, prefix string) error {
	value, err := json.Marshal(record{Owner: t.Owner(), Schema: t.Schema, Username: t.Username})
	if err != nil {
		return err
	}
	for range claimAttempts {
		schema, user, err := readSlots(ctx, cli, t)
		if err != nil {
			return err
		}
		if err := refuse(t, prefix, schema, user); err != nil {
			return err
		}
		if schema.ours(t) && user.ours(t) {
			return nil
		}
		if err := unclaimed(ctx, cli, t, prefix, schema, user); err != nil {
			return err
		}
		var cmps []clientv3.Cmp
		var puts []clientv3.Op
		for _, s := range []slot{schema, user} {
			if s.rec == nil {
				cmps = append(cmps, clientv3.Compare(clientv3.Version(s.key), "=", 0))
				puts = append(puts, clientv3.OpPut(s.key, string(value)))
			} else {
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.key), "=", s.rev))
			}
		}
		resp, err := cli.Txn(ctx).If(cmps...).Then(puts...).Commit()
		if err != nil {
			return fmt.Errorf("write owner records: %w", err)
		}
		if resp.Succeeded {
			return nil
		}
	}
	return status.Errorf(codes.Aborted, "the owner records of prefix %q and user %q keep changing; retry", prefix, t.Username)
}

// release deletes those of t's owner records that are its own, if unchanged since read.
func release(ctx context.Context, cli *clientv3.Client, t datastore.Tenant, slots ...slot) error {
	var cmps []clientv3.Cmp
	var dels []clientv3.Op
	for _, s := range slots {
		if s.ours(t) {
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
		return status.Error(codes.Aborted, "the owner records changed while the tenant was being deleted; retry")
	}
	return nil
}
