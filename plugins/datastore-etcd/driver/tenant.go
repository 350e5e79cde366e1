package driver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// validateTimeout bounds the connectivity check, so a wrong endpoint is reported within seconds
// rather than at the host's deadline.
const validateTimeout = 5 * time.Second

func (d *Driver) ValidateConfig(ctx context.Context, cfg datastore.Config) error {
	srv, err := servers(cfg)
	if err != nil {
		return err
	}
	cli, release, err := d.pool.get(cfg, srv)
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "connect: %v", err)
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, validateTimeout)
	defer cancel()
	// AuthStatus and UserList both need the root role, which EnsureTenant needs too.
	auth, err := cli.AuthStatus(ctx)
	if errors.Is(err, rpctypes.ErrPermissionDenied) {
		return status.Errorf(codes.PermissionDenied, "clientCert: the configured etcd user cannot manage users (it needs the root role): %v", err)
	}
	if err != nil {
		return status.Errorf(codes.Unavailable, "endpoints: etcd at %v does not answer: %v", srv, err)
	}
	if !auth.Enabled {
		return status.Errorf(codes.FailedPrecondition, "etcd at %v has authentication disabled: tenants would not be isolated (run `etcdctl auth enable`)", srv)
	}
	if _, err := cli.UserList(ctx); err != nil {
		return status.Errorf(codes.PermissionDenied, "clientCert: the configured etcd user cannot manage users (it needs the root role): %v", err)
	}
	return nil
}

// grant is the only permission a tenant role holds: read-write on its prefix.
func grant(prefix string) *authpb.Permission {
	return &authpb.Permission{
		PermType: authpb.READWRITE,
		Key:      []byte(prefix),
		RangeEnd: []byte(clientv3.GetPrefixRangeEnd(prefix)),
	}
}

// claimAttempts bounds the read-check-claim rounds of EnsureTenant; a round is lost only when
// another call changes the same owner keys in between.
const claimAttempts = 3

// EnsureTenant first makes t the recorded owner of its schema and user (or says who is, and
// changes nothing), then creates, in this order so that a user never holds more than intended,
// a role named after the tenant's user with read-write on "/<schema>/", the user (certificate
// authentication only, no password) and the role binding. Each step tolerates "already exists".
func (d *Driver) EnsureTenant(ctx context.Context, cfg datastore.Config, t datastore.Tenant) (datastore.Connection, error) {
	srv, err := servers(cfg)
	if err != nil {
		return datastore.Connection{}, err
	}
	prefix, err := checkTenant(cfg, t)
	if err != nil {
		return datastore.Connection{}, err
	}
	cli, done, err := d.pool.get(cfg, srv)
	if err != nil {
		return datastore.Connection{}, err
	}
	defer done()

	c := d.clusters.of(srv)
	if err := c.lock(ctx); err != nil {
		return datastore.Connection{}, err
	}
	defer c.unlock()
	if err := claimTenant(ctx, cli, c, t, prefix); err != nil {
		return datastore.Connection{}, err
	}
	role, want := t.Username, grant(prefix)
	changed, changes := c.changing(), uint64(0)
	if _, err := cli.RoleAdd(ctx, role); err == nil {
		changes++
	} else if !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
		return datastore.Connection{}, fmt.Errorf("add role %q: %w", role, err)
	}
	r, err := cli.RoleGet(ctx, role)
	if err != nil {
		return datastore.Connection{}, fmt.Errorf("get role %q: %w", role, err)
	}
	if !onlyGrants(r.Perm, want) {
		if len(r.Perm) > 0 {
			return datastore.Connection{}, sdk.Owned("tenant.username", "etcd role %q grants %s, not only %q; it is left as it is", role, describe(r.Perm), prefix)
		}
		if _, err := cli.RoleGrantPermission(ctx, role, prefix, string(want.RangeEnd), clientv3.PermissionType(want.PermType)); err != nil {
			return datastore.Connection{}, fmt.Errorf("grant %q to role %q: %w", prefix, role, err)
		}
		changes++
	}
	if _, err := cli.UserAddWithOptions(ctx, t.Username, "", &clientv3.UserAddOptions{NoPassword: true}); err == nil {
		changes++
	} else if !errors.Is(err, rpctypes.ErrUserAlreadyExist) {
		return datastore.Connection{}, fmt.Errorf("add user %q: %w", t.Username, err)
	}
	u, err := cli.UserGet(ctx, t.Username)
	if err != nil {
		return datastore.Connection{}, fmt.Errorf("get user %q: %w", t.Username, err)
	}
	for _, other := range u.Roles {
		if other != role {
			return datastore.Connection{}, sdk.Owned("tenant.username", "etcd user %q also holds role %q; it is left as it is", t.Username, other)
		}
	}
	if len(u.Roles) == 0 {
		if _, err := cli.UserGrantRole(ctx, t.Username, role); err != nil {
			return datastore.Connection{}, fmt.Errorf("grant role %q to user %q: %w", role, t.Username, err)
		}
		changes++
	}
	changed(ctx, cli, changes, role, []*authpb.Permission{want})
	return datastore.Connection{Etcd: &datastore.EtcdConnection{
		Servers:           srv,
		Prefix:            prefix,
		ClientCertificate: datastore.CertificateRequest{CommonName: t.Username},
	}}, nil
}

// claimTenant records t's owner on its schema and user, or returns the sdk.Owned error naming
// who holds them. A slice without records is adopted only when nothing but t's own role and
// user reach it (see unrecorded).
func claimTenant(ctx context.Context, cli *clientv3.Client, c *cluster, t datastore.Tenant, prefix string) error {
	for range claimAttempts {
		schema, user, err := readRecords(ctx, cli, t)
		if err != nil {
			return err
		}
		if err := refuse(t, prefix, schema); err != nil {
			return err
		}
		if err := refuse(t, prefix, user); err != nil {
			return err
		}
		if schema.absent() || user.absent() {
			u, err := inspect(ctx, cli, c, t, prefix, schema.absent())
			if err != nil {
				return err
			}
			// The user first: a role of the tenant's own name that is not the tenant's is
			// reported on the username, which is what to change.
			if user.absent() {
				if err := u.userErr(t); err != nil {
					return err
				}
			}
			if schema.absent() {
				if err := u.schemaErr(t); err != nil {
					return err
				}
			}
		}
		ok, err := claim(ctx, cli, t, schema, user)
		if err != nil || ok {
			return err
		}
	}
	return status.Errorf(codes.Aborted, "the owner records of %q and user %q keep changing; retry", prefix, t.Username)
}

func onlyGrants(perms []*authpb.Permission, want *authpb.Permission) bool {
	return len(perms) == 1 && perms[0].PermType == want.PermType &&
		bytes.Equal(perms[0].Key, want.Key) && bytes.Equal(perms[0].RangeEnd, want.RangeEnd)
}

// DeleteTenant removes only what t owns: the user and role where t owns the user record, the
// keys where it owns the schema record (without records, where the legacy checks of
// EnsureTenant would adopt them). Access goes first (user, then role), so the tenant cannot
// write while its data goes away, and the records last, so a retry after a failure finds them
// and finishes.
func (d *Driver) DeleteTenant(ctx context.Context, cfg datastore.Config, t datastore.Tenant) error {
	srv, err := servers(cfg)
	if err != nil {
		return err
	}
	prefix, err := checkTenant(cfg, t)
	if err != nil {
		return err
	}
	cli, done, err := d.pool.get(cfg, srv)
	if err != nil {
		return err
	}
	defer done()
	c := d.clusters.of(srv)
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()

	schema, user, err := readRecords(ctx, cli, t)
	if err != nil {
		return err
	}
	schemaMine, userMine := schema.mine(t), user.mine(t)
	if schema.absent() || user.absent() {
		u, err := inspect(ctx, cli, c, t, prefix, schema.absent())
		if err != nil {
			return err
		}
		if schema.absent() {
			schemaMine = u.schemaErr(t) == nil
		}
		if user.absent() {
			userMine = u.userErr(t) == nil
		}
	}
	if userMine {
		c.forget() // a role goes: read them again next time
		if err := dropAccess(ctx, cli, t); err != nil {
			return err
		}
	}
	if schemaMine {
		if _, err := cli.Delete(ctx, prefix, clientv3.WithPrefix()); err != nil {
			return fmt.Errorf("delete keys under %q: %w", prefix, err)
		}
	}
	return release(ctx, cli, t, schema, user)
}

// dropAccess deletes the tenant's user, then its role.
func dropAccess(ctx context.Context, cli *clientv3.Client, t datastore.Tenant) error {
	if _, err := cli.UserDelete(ctx, t.Username); err != nil && !errors.Is(err, rpctypes.ErrUserNotFound) {
		return fmt.Errorf("delete user %q: %w", t.Username, err)
	}
	if _, err := cli.RoleDelete(ctx, t.Username); err != nil && !errors.Is(err, rpctypes.ErrRoleNotFound) {
		return fmt.Errorf("delete role %q: %w", t.Username, err)
	}
	return nil
}
