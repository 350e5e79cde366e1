package driver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// clusters holds what the plugin keeps per etcd cluster (by its endpoints).
type clusters struct {
	mu sync.Mutex
	m  map[string]*cluster
}

// of is the cluster at servers.
func (cs *clusters) of(servers []string) *cluster {
	k := strings.Join(servers, ",")
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.m == nil {
		cs.m = map[string]*cluster{}
	}
	if cs.m[k] == nil {
		cs.m[k] = &cluster{sem: make(chan struct{}, 1)}
	}
	return cs.m[k]
}

// cluster serialises this plugin's provisioning and deprovisioning on one etcd cluster, and
// keeps the permissions of the cluster's roles between them.
//
// Serialised, because every change to users or roles moves etcd's auth revision, and etcd
// refuses a key write authorised at an older revision (the client retries it after a backoff):
// the calls' auth changes and owner-record writes would keep failing one another.
//
// The roles' permissions, because adopting a prefix without an owner record needs every role
// that reaches it (unrecorded.reaching), and reading every role for every new tenant made
// provisioning quadratic: measured here, EnsureTenant took 0.36 s with 300 tenants and 1.5 s
// with 1,000, one after another. The cache is trusted only at the auth revision it was read at,
// moved on by exactly the changes this plugin made (it makes them holding the lock); any other
// change to users or roles (an operator, another plugin process) and it is read again.
type cluster struct {
	sem chan struct{} // held by one EnsureTenant or DeleteTenant at a time

	// rev is the auth revision roles reflects; valid is false until roles was read.
	rev   uint64
	valid bool
	roles map[string][]*authpb.Permission
}

// lock takes the cluster, or returns ctx's error.
func (c *cluster) lock(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *cluster) unlock() { <-c.sem }

// reaching lists the roles, other than self and root, that grant keys under prefix (see
// reaches), from the cache when the auth revision is the cache's. The caller holds the lock.
func (c *cluster) reaching(ctx context.Context, cli *clientv3.Client, prefix, self string) ([]string, error) {
	st, err := cli.AuthStatus(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth status: %w", err)
	}
	if !c.valid || st.AuthRevision != c.rev {
		// Read at st's revision or later: a change meanwhile is in roles, and moves the revision
		// past rev, so the next call reads them again.
		c.valid = false
		list, err := cli.RoleList(ctx)
		if err != nil {
			return nil, fmt.Errorf("list roles: %w", err)
		}
		roles := make(map[string][]*authpb.Permission, len(list.Roles))
		for _, name := range list.Roles {
			r, err := cli.RoleGet(ctx, name)
			if errors.Is(err, rpctypes.ErrRoleNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("get role %q: %w", name, err)
			}
			roles[name] = r.Perm
		}
		c.roles, c.rev, c.valid = roles, st.AuthRevision, true
	}
	var out []string
	for name, perms := range c.roles {
		if name == self || name == "root" {
			continue
		}
		if slices.ContainsFunc(perms, func(p *authpb.Permission) bool { return reaches(p, prefix) }) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// changing is called, holding the lock, before this plugin changes users or roles; done(n,
// role, perms) after it made n changes (each moves the auth revision by one) and role now has
// perms. The cache stays valid only if the revision moved by
// exactly n: then nothing else changed meanwhile. A call that fails in between leaves it
// invalid.
func (c *cluster) changing() (done func(ctx context.Context, cli *clientv3.Client, n uint64, role string, perms []*authpb.Permission)) {
	rev, valid := c.rev, c.valid
	c.valid = false
	return func(ctx context.Context, cli *clientv3.Client, n uint64, role string, perms []*authpb.Permission) {
		if !valid {
			return
		}
		st, err := cli.AuthStatus(ctx)
		if err != nil || st.AuthRevision != rev+n {
			return
		}
		c.roles[role] = perms
		c.rev, c.valid = st.AuthRevision, true
	}
}

// forget drops the cache: the roles changed in a way this plugin does not follow.
func (c *cluster) forget() { c.valid, c.roles = false, nil }
