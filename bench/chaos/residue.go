package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The etcd datastore plugin's layout (plugins/datastore-etcd/driver): a tenant is an etcd user
// and a role of the same name granting "/<schema>/", and two owner records naming the
// TenantControlPlane (namespace, name, uid) with the schema and user they hold together.
const (
	schemaOwnerPrefix = "kamaji/owners/schema/"
	userOwnerPrefix   = "kamaji/owners/user/"
	rootUser          = "root"
)

// ownerRecord is the value of an owner key.
type ownerRecord struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
	Schema    string `json:"schema"`
	Username  string `json:"username"`
}

// etcdSlices is what the DataStore's etcd holds of tenants, read with the admin (root) client.
type etcdSlices struct {
	Users, Roles []string // root excluded
	SchemaOwners []ownerRecord
	UserOwners   int
	// TenantKeys counts keys under "/": tenant data (kube-apiserver's --etcd-prefix "/<schema>/").
	TenantKeys int64
}

func readSlices(ctx context.Context, cli *clientv3.Client) (etcdSlices, error) {
	var s etcdSlices
	users, err := cli.UserList(ctx)
	if err != nil {
		return s, err
	}
	for _, u := range users.Users {
		if u != rootUser {
			s.Users = append(s.Users, u)
		}
	}
	roles, err := cli.RoleList(ctx)
	if err != nil {
		return s, err
	}
	for _, r := range roles.Roles {
		if r != rootUser {
			s.Roles = append(s.Roles, r)
		}
	}
	recs, err := cli.Get(ctx, schemaOwnerPrefix, clientv3.WithPrefix())
	if err != nil {
		return s, err
	}
	for _, kv := range recs.Kvs {
		var r ownerRecord
		if json.Unmarshal(kv.Value, &r) != nil {
			r = ownerRecord{Schema: strings.TrimPrefix(string(kv.Key), schemaOwnerPrefix)} // unreadable: owner unknown
		}
		s.SchemaOwners = append(s.SchemaOwners, r)
	}
	uo, err := cli.Get(ctx, userOwnerPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return s, err
	}
	s.UserOwners = int(uo.Count)
	keys, err := cli.Get(ctx, "/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return s, err
	}
	s.TenantKeys = keys.Count
	return s, nil
}

// liveTenant is a TenantControlPlane that exists, with the slice it asks for.
type liveTenant struct {
	UID, Schema, Username string
}

// audit is the comparison of etcd with the TenantControlPlanes that exist.
type audit struct {
	// LeakedUsers are etcd users no live TCP asks for.
	LeakedUsers []string
	// DuplicateSlices counts owner records beyond the first for one TCP (uid): a TCP holding two
	// slices.
	DuplicateSlices int
	// OrphanSlices are schema owner records whose owner is no live TCP.
	OrphanSlices []string
	// Missing counts live TCPs without their user or owner record.
	Missing int
}

func auditSlices(s etcdSlices, live []liveTenant) audit {
	var a audit
	wanted := map[string]bool{}
	uids := map[string]bool{}
	for _, t := range live {
		wanted[t.Username] = true
		uids[t.UID] = true
	}
	for _, u := range s.Users {
		if !wanted[u] {
			a.LeakedUsers = append(a.LeakedUsers, u)
		}
	}
	perUID := map[string]int{}
	for _, r := range s.SchemaOwners {
		if r.UID == "" || !uids[r.UID] {
			a.OrphanSlices = append(a.OrphanSlices, r.Schema)
			continue
		}
		perUID[r.UID]++
	}
	for _, n := range perUID {
		a.DuplicateSlices += n - 1
	}
	for _, t := range live {
		if !slices.Contains(s.Users, t.Username) || perUID[t.UID] == 0 {
			a.Missing++
		}
	}
	slices.Sort(a.LeakedUsers)
	slices.Sort(a.OrphanSlices)
	return a
}

// residue is everything tenants left in etcd once no TCP exists: users, roles, owner records
// and tenant keys.
func (s etcdSlices) residue() int64 {
	return int64(len(s.Users)+len(s.Roles)+len(s.SchemaOwners)+s.UserOwners) + s.TenantKeys
}
