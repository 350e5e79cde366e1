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

// EnsureTenant creates, in this order so that a user never holds more than intended, a role
// named after the tenant's user with read-write on "/<schema>/", the user (certificate
// authentication only, no password) and the role binding. Each step tolerates "already exists".
func (d *Driver) EnsureTenant(ctx context.Context, cfg datastore.Config, t datastore.Tenant) (datastore.Connection, error) {
	srv, err := servers(cfg)
	if err != nil {
		return datastore.Connection{}, err
	}
	prefix, err := tenantPrefix(t)
	if err != nil {
		return datastore.Connection{}, err
	}
	cli, release, err := d.pool.get(cfg, srv)
	if err != nil {
		return datastore.Connection{}, err
	}
	defer release()

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
			return datastore.Connection{}, collision(t, "role %q grants other keys", role)
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
	for _, other := range u.Roles {
		if other != role {
			return datastore.Connection{}, collision(t, "user %q also holds role %q", t.Username, other)
		}
	}
	if len(u.Roles) == 0 {
		if _, err := cli.UserGrantRole(ctx, t.Username, role); err != nil {
			return datastore.Connection{}, fmt.Errorf("grant role %q to user %q: %w", role, t.Username, err)
		}
	}
	return datastore.Connection{Etcd: &datastore.EtcdConnection{
		Servers:           srv,
		Prefix:            prefix,
		ClientCertificate: datastore.CertificateRequest{CommonName: t.Username},
	}}, nil
}

// collision refuses to touch an etcd user or role that belongs to something else: widening it
// would break isolation, narrowing it would break its owner.
func collision(t datastore.Tenant, format string, args ...any) error {
	return status.Errorf(codes.AlreadyExists, "tenant.username: %s; the etcd user %q is taken, choose another username",
		fmt.Sprintf(format, args...), t.Username)
}

func onlyGrants(perms []*authpb.Permission, want *authpb.Permission) bool {
	return len(perms) == 1 && perms[0].PermType == want.PermType &&
		bytes.Equal(perms[0].Key, want.Key) && bytes.Equal(perms[0].RangeEnd, want.RangeEnd)
}

// DeleteTenant revokes access first (user, then role) and then deletes the keys, so the tenant
// cannot write while its data goes away. A role that grants something else is not the tenant's
// and is left alone, with its user; the tenant's keys are deleted regardless.
func (d *Driver) DeleteTenant(ctx context.Context, cfg datastore.Config, t datastore.Tenant) error {
	srv, err := servers(cfg)
	if err != nil {
		return err
	}
	prefix, err := tenantPrefix(t)
	if err != nil {
		return err
	}
	cli, release, err := d.pool.get(cfg, srv)
	if err != nil {
		return err
	}
	defer release()

	role := t.Username
	owned := true
	switch r, err := cli.RoleGet(ctx, role); {
	case errors.Is(err, rpctypes.ErrRoleNotFound):
	case err != nil:
		return fmt.Errorf("get role %q: %w", role, err)
	default:
		owned = len(r.Perm) == 0 || onlyGrants(r.Perm, grant(prefix))
	}
	if owned {
		if _, err := cli.UserDelete(ctx, t.Username); err != nil && !errors.Is(err, rpctypes.ErrUserNotFound) {
			return fmt.Errorf("delete user %q: %w", t.Username, err)
		}
		if _, err := cli.RoleDelete(ctx, role); err != nil && !errors.Is(err, rpctypes.ErrRoleNotFound) {
			return fmt.Errorf("delete role %q: %w", role, err)
		}
	}
	if _, err := cli.Delete(ctx, prefix, clientv3.WithPrefix()); err != nil {
		return fmt.Errorf("delete keys under %q: %w", prefix, err)
	}
	return nil
}
