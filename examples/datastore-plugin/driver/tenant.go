package driver

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// grant is the one permission a tenant's role holds: read-write on the range of its prefix,
// ["/<schema>/", "/<schema>0"). The trailing '/' keeps tenant "a" out of tenant "ab".
func grant(prefix string) *authpb.Permission {
	return &authpb.Permission{PermType: authpb.READWRITE, Key: []byte(prefix), RangeEnd: []byte(clientv3.GetPrefixRangeEnd(prefix))}
}

func isGrant(p *authpb.Permission, want *authpb.Permission) bool {
	return p.PermType == want.PermType && bytes.Equal(p.Key, want.Key) && bytes.Equal(p.RangeEnd, want.RangeEnd)
}

// EnsureTenant records t as the owner of its schema and user (or says who is, and changes
// nothing), then creates, in this order so that a user never holds more than intended, a role
// named after the user with read-write on "/<schema>/", the user (no password: it authenticates
// with the client certificate the core signs) and the role binding. Every step tolerates what a
// previous call already did, so a retry returns the same connection.
func (d *Driver) EnsureTenant(ctx context.Context, cfg datastore.Config, t datastore.Tenant) (datastore.Connection, error) {
	srv, err := servers(cfg)
	if err != nil {
		return datastore.Connection{}, err
	}
	prefix, err := checkTenant(cfg, t)
	if err != nil {
		return datastore.Connection{}, err
	}
	if t.UID == "" {
		return datastore.Connection{}, sdk.InvalidField("tenant.uid", "required: the owner record names the TenantControlPlane by its uid")
	}
	cli, done, err := d.clients.get(cfg, srv)
	if err != nil {
		return datastore.Connection{}, err
	}
	defer done()

	if err := claim(ctx, cli, t, prefix); err != nil {
		return datastore.Connection{}, err
	}
	role, want := t.Username, grant(prefix)
	if _, err := cli.RoleAdd(ctx, role); err != nil && !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
		return datastore.Connection{}, fmt.Errorf("add role %q: %w", role, err)
	}
	r, err := cli.RoleGet(ctx, role)
	if err != nil {
		return datastore.Connection{}, fmt.Errorf("get role %q: %w", role, err)
	}
	switch {
	case len(r.Perm) == 0:
		if _, err := cli.RoleGrantPermission(ctx, role, prefix, string(want.RangeEnd), clientv3.PermissionType(want.PermType)); err != nil {
			return datastore.Connection{}, fmt.Errorf("grant %q to role %q: %w", prefix, role, err)
		}
	case len(r.Perm) > 1 || !isGrant(r.Perm[0], want):
		// Someone changed the tenant's role behind the driver's back: it is not widened further,
		// nor narrowed silently.
		return datastore.Connection{}, status.Errorf(codes.FailedPrecondition, "etcd role %q grants more than %q; it is left as it is", role, prefix)
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
			return datastore.Connection{}, status.Errorf(codes.FailedPrecondition, "etcd user %q also holds role %q; it is left as it is", t.Username, other)
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

// DeleteTenant removes what t owns, and only that: the user and its role where t owns the user
// record, the keys where it owns the schema record, then those records. Access goes first, so
// the tenant cannot write while its data goes; the records last, so a retry after a failure
// finds them and finishes. A slice recorded for someone else, or for nobody, is not t's: it is
// left alone, and the call succeeds. So does the call for a name this driver refuses, which it
// never provisioned.
func (d *Driver) DeleteTenant(ctx context.Context, cfg datastore.Config, t datastore.Tenant) error {
	srv, err := servers(cfg)
	if err != nil {
		return err
	}
	prefix, err := checkTenant(cfg, t)
	if err != nil {
		var fe *sdk.FieldError
		if errors.As(err, &fe) {
			return nil
		}
		return err
	}
	cli, done, err := d.clients.get(cfg, srv)
	if err != nil {
		return err
	}
	defer done()

	schema, user, err := readSlots(ctx, cli, t)
	if err != nil {
		return err
	}
	if user.ours(t) {
		if _, err := cli.UserDelete(ctx, t.Username); err != nil && !errors.Is(err, rpctypes.ErrUserNotFound) {
			return fmt.Errorf("delete user %q: %w", t.Username, err)
		}
		if _, err := cli.RoleDelete(ctx, t.Username); err != nil && !errors.Is(err, rpctypes.ErrRoleNotFound) {
			return fmt.Errorf("delete role %q: %w", t.Username, err)
		}
	}
	if schema.ours(t) {
		if _, err := cli.Delete(ctx, prefix, clientv3.WithPrefix()); err != nil {
			return fmt.Errorf("delete keys under %q: %w", prefix, err)
		}
	}
	return release(ctx, cli, t, schema, user)
}
