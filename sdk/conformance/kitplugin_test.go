package conformance_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhcp/kamaji/sdk/conformance"
	"github.com/openhcp/kamaji/sdk/internal/testutil"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// TestKitOnEtcd runs the kit, through the real transport, against sdk/internal/kitplugin and a
// real etcd with TLS, client certificates and auth: written correctly, the plugin passes every
// check; each deliberately broken variant fails, and fails the check meant to catch its bug
// (with the reason given here); every other check passes. Whatever the variant, the kit leaves
// nothing in etcd.
func TestKitOnEtcd(t *testing.T) {
	bin, sum := testutil.BuildPlugin(t, t.TempDir(), "github.com/openhcp/kamaji/sdk/internal/kitplugin")
	for _, tc := range []struct {
		broken string
		// fails maps each check that must fail to a substring of its reason.
		fails map[string]string
	}{
		{broken: ""},
		// A twin given another tenant's schema is provisioned and reads the owner's data.
		{broken: "no-ownership", fails: map[string]string{
			"ownership": "the twin reads tenant o's key",
		}},
		// Each new tenant also holds the roles of the older ones: ab reads a's keys, and the
		// tenant given the user a twin asked for reads the owner's.
		{broken: "grant-older", fails: map[string]string{
			"isolation": "tenant ab read tenant a's key",
			"ownership": "tenant f1 read tenant o's key",
		}},
		// Deleting one tenant deletes the others: so does deleting a refused twin.
		{broken: "delete-all", fails: map[string]string{
			"delete-tenant": "after DeleteTenant of tenant a, tenant ab no longer reads back its own data",
			"ownership":     "after DeleteTenant of twin twin-schema",
		}},
		// Export gives other tenants' keys and the owner records.
		{broken: "export-all", fails: map[string]string{
			"export-import": "keys it does not hold",
		}},
	} {
		name := tc.broken
		if name == "" {
			name = "correct"
		}
		t.Run(name, func(t *testing.T) {
			etcd := testkit.StartEtcd(t)
			rep, err := conformance.Verify(t.Context(), conformance.Config{
				PluginPath:   bin,
				PluginSHA256: sum,
				PluginArgs:   []string{"-broken=" + tc.broken},
				DataStore:    etcd.Config(),
				ExportKeys:   300,
				Timeout:      time.Minute,
			})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := rep.Print(&out); err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + out.String())
			for _, r := range rep.Results {
				want, fails := tc.fails[r.Name]
				switch {
				case fails && r.Status != conformance.Fail:
					t.Errorf("%s: %s (%s), want FAIL", r.Name, r.Status, r.Reason)
				case fails && !strings.Contains(r.Reason, want):
					t.Errorf("%s: FAIL for another reason: %q, want one with %q", r.Name, r.Reason, want)
				case !fails && r.Status != conformance.Pass:
					t.Errorf("%s: %s (%s), want PASS", r.Name, r.Status, r.Reason)
				}
			}
			if len(rep.Results) != 16 {
				t.Errorf("%d checks ran, want 16", len(rep.Results))
			}
			if rep.Passed() != (tc.broken == "") {
				t.Errorf("Passed() = %v", rep.Passed())
			}
			assertEmpty(t, etcd.Client(t))
		})
	}
}

// assertEmpty checks that etcd holds no key, and no user or role but root.
func assertEmpty(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys, err := cli.Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range keys.Kvs {
		t.Errorf("the kit left key %q", kv.Key)
	}
	users, err := cli.UserList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(users.Users, []string{"root"}) {
		t.Errorf("the kit left users %q", users.Users)
	}
	roles, err := cli.RoleList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(roles.Roles, func(r string) bool { return r != "root" }) {
		t.Errorf("the kit left roles %q", roles.Roles)
	}
}
