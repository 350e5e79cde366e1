// Command kitplugin is a datastore plugin for the conformance kit's own tests, served through the
// real transport and run against a real etcd. It is an etcd driver written the way
// docs/plugins/author-guide.md says: one role and one user per tenant, confined to
// "/<schema>/"; the owner of each schema and each user recorded in etcd, under keys that no
// tenant prefix covers, and claimed with a Txn before anything is provisioned.
//
// -broken selects one deliberate bug, which the kit must catch:
//
//	no-ownership  records and checks no owner: a twin given another tenant's schema reads its
//	              data, and deleting the twin deletes the owner's keys, role and user
//	grant-older   also grants each new tenant the roles of the tenants provisioned before it
//	delete-all    DeleteTenant deletes every tenant
//	export-all    Export returns the whole keyspace instead of the tenant's keys
//
// Usage (started by a host only):
//
//	kitplugin [-broken no-ownership|grant-older|delete-all|export-all]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/openhcp/kamaji/sdk/datastore"
)

// Bugs -broken accepts.
const (
	noOwnership = "no-ownership"
	grantOlder  = "grant-older"
	deleteAll   = "delete-all"
	exportAll   = "export-all"
)

func main() {
	broken := flag.String("broken", "", "deliberate bug: "+noOwnership+", "+grantOlder+", "+deleteAll+" or "+exportAll)
	flag.Parse()
	switch *broken {
	case "", noOwnership, grantOlder, deleteAll, exportAll:
	default:
		fmt.Fprintf(os.Stderr, "kitplugin: unknown -broken %q\n", *broken)
		os.Exit(2)
	}
	datastore.Serve(&driver{broken: *broken}, datastore.ServeOptions{})
}
