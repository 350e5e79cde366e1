package driver

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/conformance/kine"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit/mysqltest"
)

// Ownership: the registry, twins, concurrent claims, legacy adoption and half-provisioned
// tenants, on the machine's server with an administrative account holding only the privileges
// the documentation lists (mysqltest.AdminPrivileges).

// newTenant gives a tenant a uid derived from its names: the same tenant of another run (left
// over by an interrupted one: the registry outlives the test's administrative account) is the
// same owner.
func newTenant(name, schema, user string) datastore.Tenant {
	sum := sha256.Sum256([]byte(name + "\x00" + schema + "\x00" + user))
	h := hex.EncodeToString(sum[:16])
	uid := h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20] + "-" + h[20:32]
	return datastore.Tenant{Namespace: "ns", Name: name, Schema: schema, Username: user, UID: uid}
}

// reborn is tn deleted and created again under the same name: another owner.
func reborn(tn datastore.Tenant) datastore.Tenant {
	tn.UID = "reborn-" + tn.UID
	return tn
}

// ownedBy checks that err refuses field naming owner o.
func ownedBy(t *testing.T, err error, field string, o datastore.Owner) {
	t.Helper()
	var oe *sdk.OwnedError
	if !errors.As(err, &oe) {
		t.Fatalf("got %v, want an *sdk.OwnedError (ALREADY_EXISTS) on %s", err, field)
	}
	if oe.Field != field || !strings.Contains(oe.Message, o.String()) {
		t.Fatalf("got %q on %q, want %s naming the owner %s", oe.Message, oe.Field, field, o)
	}
}

// registryRows lists the owners recorded for the names, as "kind name uid".
func registryRows(t *testing.T, names ...string) []string {
	t.Helper()
	var out []string
	for i, name := range names {
		if slices.Contains(names[:i], name) {
			continue
		}
		rows, err := mysqltest.Root(t).QueryContext(t.Context(), "SELECT CONCAT(kind, ' ', name, ' ', owner_uid) FROM "+registryTable+" WHERE name = ? ORDER BY kind", name)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		rows.Close()
	}
	return out
}

// residue lists the accounts, grants, database and owner records left of tn.
func residue(t *testing.T, tn datastore.Tenant) []string {
	t.Helper()
	root := mysqltest.Root(t)
	var out []string
	var n int
	if err := root.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM mysql.user WHERE User = ?", tn.Username).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		out = append(out, "account "+tn.Username)
	}
	if err := root.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM mysql.db WHERE User = ? OR Db = ?", tn.Username, grantPattern(tn.Schema)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		out = append(out, "grants of "+tn.Username+" or on "+tn.Schema)
	}
	if err := root.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", tn.Schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		out = append(out, "database "+tn.Schema)
	}
	return append(out, registryRows(t, tn.Schema, tn.Username)...)
}

// as runs statements as user, with password.
func as(t *testing.T, cfg datastore.Config, user, password string, stmts ...string) {
	t.Helper()
	s, err := parseConfig(cfg, DefaultKineImage)
	if err != nil {
		t.Fatal(err)
	}
	c, err := mysql.NewConnector(s.mysqlConfig(user, password, ""))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	for _, stmt := range stmts {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// asAdmin runs statements as the DataStore's administrative user, the way the plugin (or an
// older release of it) would have.
func asAdmin(t *testing.T, cfg datastore.Config, stmts ...string) {
	t.Helper()
	as(t, cfg, cfg.Username, cfg.Password, stmts...)
}

// claimByHand records tn's names as the plugin does before it creates anything.
func claimByHand(t *testing.T, d *Driver, cfg datastore.Config, tn datastore.Tenant) {
	t.Helper()
	s, err := parseConfig(cfg, DefaultKineImage)
	if err != nil {
		t.Fatal(err)
	}
	db, release, err := d.admin(s)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := d.ensureRegistry(t.Context(), s, db); err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]string{{kindSchema, tn.Schema}, {kindUser, tn.Username}} {
		if _, err := db.ExecContext(t.Context(), "INSERT INTO "+registryTable+" (kind, name, owner_namespace, owner_name, owner_uid) VALUES (?, ?, ?, ?, ?)",
			p[0], p[1], tn.Namespace, tn.Name, tn.UID); err != nil {
			t.Fatal(err)
		}
	}
}

// dropByHand removes whatever is left of tn, records included (when a test fails midway).
func dropByHand(t *testing.T, tn datastore.Tenant) {
	t.Helper()
	root := mysqltest.Root(t)
	t.Cleanup(func() {
		_, _ = root.Exec("DROP DATABASE IF EXISTS " + quoteIdent(tn.Schema))
		_, _ = root.Exec("DROP USER IF EXISTS " + account(tn.Username, "%"))
		_, _ = root.Exec("DELETE FROM "+registryTable+" WHERE (kind = 'schema' AND name = ?) OR (kind = 'user' AND name = ?)", tn.Schema, tn.Username)
	})
}

// write puts a key through tn's own credentials (kine's table, as kine writes it) and returns
// a check that it still reads back, through a new login.
func write(t *testing.T, cfg datastore.Config, tn datastore.Tenant, conn datastore.Connection) func() error {
	t.Helper()
	ctx := t.Context()
	s, err := kine.Backend{}.Open(ctx, cfg, tn, conn)
	if err != nil {
		t.Fatal(err)
	}
	key := s.Prefix() + "registry/secrets/victim"
	if err := s.Put(ctx, key, []byte("victim's data")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	return func() error {
		s, err := kine.Backend{}.Open(ctx, cfg, tn, conn)
		if err != nil {
			return fmt.Errorf("log in with the tenant's own credentials: %w", err)
		}
		defer s.Close()
		v, ok, err := s.Get(ctx, key)
		if err != nil || !ok || string(v) != "victim's data" {
			return fmt.Errorf("read %s: %q %v %v", key, v, ok, err)
		}
		return nil
	}
}

func TestValidateTenant(t *testing.T) {
	d := newDriver(t)
	// Offline: an unreachable endpoint, and even no endpoint at all, changes nothing.
	cfg := datastore.Config{Endpoints: []string{"203.0.113.1:3306"}, Username: "kamaji_admin", Password: "x"}
	if err := d.ValidateTenant(t.Context(), cfg, newTenant("ok", "t_ok", "t_ok")); err != nil {
		t.Fatalf("valid tenant: %v", err)
	}
	noEndpoint := cfg
	noEndpoint.Endpoints = nil
	if err := d.ValidateTenant(t.Context(), noEndpoint, newTenant("ok", "t_ok", "t_ok")); err != nil {
		t.Fatalf("valid tenant on a DataStore without endpoint: %v", err)
	}
	for _, c := range []struct{ field, schema, user string }{
		{"tenant.schema", "", "u"},
		{"tenant.username", "s", ""},
		{"tenant.username", "s", "kamaji_admin"},
		{"tenant.username", "s", "KAMAJI_ADMIN"},
		{"tenant.username", "s", "root"},
		{"tenant.username", "s", "mariadb.sys"},
		{"tenant.username", "s", "PUBLIC"},
		{"tenant.username", "s", "a:b"},
		{"tenant.username", "s", strings.Repeat("u", 81)},
		{"tenant.username", "s", "trailing "},
		{"tenant.schema", "mysql", "u"},
		{"tenant.schema", "INFORMATION_SCHEMA", "u"},
		{"tenant.schema", "performance_schema", "u"},
		{"tenant.schema", "sys", "u"},
		{"tenant.schema", registryDB, "u"},
		{"tenant.schema", "Kamaji_Registry", "u"},
		{"tenant.schema", strings.Repeat("s", 65), "u"},
		{"tenant.schema", "emoji 😀", "u"},
	} {
		err := d.ValidateTenant(t.Context(), cfg, newTenant("bad", c.schema, c.user))
		if !isField(err, c.field) {
			t.Errorf("schema %q, username %q: %v, want INVALID_ARGUMENT naming %s", c.schema, c.user, err, c.field)
		}
	}
	caps, _ := d.Capabilities(t.Context())
	if !strings.Contains(fmt.Sprint(caps), "VALIDATE_TENANT") {
		t.Errorf("capabilities %v do not announce VALIDATE_TENANT", caps)
	}

	// EnsureTenant and DeleteTenant refuse the same names, before touching the server.
	real := mysqltest.DataStore(t)
	admin := newTenant("admin", "t_admin_tenant", real.Username)
	if _, err := d.EnsureTenant(t.Context(), real, admin); !isField(err, "tenant.username") {
		t.Errorf("EnsureTenant as the administrative user: %v, want INVALID_ARGUMENT naming tenant.username", err)
	}
	if err := d.DeleteTenant(t.Context(), real, admin); !isField(err, "tenant.username") {
		t.Errorf("DeleteTenant as the administrative user: %v, want INVALID_ARGUMENT naming tenant.username", err)
	}
	if _, err := d.EnsureTenant(t.Context(), real, newTenant("reg", registryDB, "t_reg")); !isField(err, "tenant.schema") {
		t.Errorf("EnsureTenant on the registry database: %v, want INVALID_ARGUMENT naming tenant.schema", err)
	}
}

// Three twins of a tenant are refused, naming the owner, and their DeleteTenant leaves the
// victim's data, account, grants and database as they were.
func TestTwinsAreRefusedAndHarmless(t *testing.T) {
	d, cfg := newDriver(t), mysqltest.DataStore(t)
	ctx := t.Context()
	victim := newTenant("victim", "t_twin_victim", "t_twin_victim")
	dropByHand(t, victim)
	conn := ensure(t, d, cfg, victim)
	readBack := write(t, cfg, victim, conn)

	root := mysqltest.Root(t)
	state := func() string {
		grants, err := queryStrings(ctx, root, "SHOW GRANTS FOR "+account(victim.Username, "%"))
		if err != nil {
			t.Fatal(err)
		}
		var hash string
		var tables int
		if err := root.QueryRowContext(ctx, "SELECT authentication_string FROM mysql.user WHERE User = ? AND Host = '%'", victim.Username).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		if err := root.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", victim.Schema).Scan(&tables); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%q %s %d tables", grants, hash, tables)
	}
	before, rowsBefore := state(), registryRows(t, victim.Schema, victim.Username)
	if len(rowsBefore) != 2 {
		t.Fatalf("owner records of the victim: %q, want its schema and its user", rowsBefore)
	}

	twins := []struct {
		what  string
		t     datastore.Tenant
		field string
	}{
		{"same schema, another user", newTenant("twin-schema", victim.Schema, "t_twin_other_user"), "tenant.schema"},
		{"same schema and user, another uid", reborn(victim), "tenant.schema"},
		{"another schema, same user", newTenant("twin-user", "t_twin_other_schema", victim.Username), "tenant.username"},
	}
	for _, tw := range twins {
		_, err := d.EnsureTenant(ctx, cfg, tw.t)
		ownedBy(t, err, tw.field, victim.Owner())
		if err := d.DeleteTenant(ctx, cfg, tw.t); err != nil {
			t.Fatalf("DeleteTenant of the twin (%s): %v", tw.what, err)
		}
		if after := state(); after != before {
			t.Fatalf("after the twin (%s) came and went, the victim's account or database changed:\n%s\n%s", tw.what, before, after)
		}
		if rows := registryRows(t, victim.Schema, victim.Username); strings.Join(rows, ",") != strings.Join(rowsBefore, ",") {
			t.Fatalf("after the twin (%s), owner records %q, want %q", tw.what, rows, rowsBefore)
		}
		if err := readBack(); err != nil {
			t.Fatalf("after the twin (%s): %v", tw.what, err)
		}
		if left := residue(t, datastore.Tenant{Schema: "t_twin_other_schema", Username: "t_twin_other_user"}); len(left) > 0 {
			t.Fatalf("the twin (%s) left %q", tw.what, left)
		}
	}
	if again := ensure(t, d, cfg, victim); again.Kine.Env[0].Value != conn.Kine.Env[0].Value {
		t.Error("the victim's password changed")
	}
}

// The registry is a database no tenant is granted, even one whose name is a wildcard pattern
// matching the registry's name.
func TestRegistryIsPrivate(t *testing.T) {
	d, cfg := newDriver(t), mysqltest.DataStore(t)
	ctx := t.Context()
	for _, schema := range []string{"kamaji%", "kamaji_registr_", "t_private"} {
		tn := newTenant("private", schema, "t_private_"+fmt.Sprint(len(schema)))
		dropByHand(t, tn)
		conn := ensure(t, d, cfg, tn)
		s, err := parseConfig(cfg, DefaultKineImage)
		if err != nil {
			t.Fatal(err)
		}
		c, err := mysql.NewConnector(s.mysqlConfig(tn.Username, conn.Kine.Env[0].Value, ""))
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(c)
		defer db.Close()
		var n int
		err = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+registryTable).Scan(&n)
		if code := mysqlErrno(err); code != 1142 && code != 1044 {
			t.Fatalf("tenant with schema %q reading the registry: %d %v, want access denied", schema, n, err)
		}
		dbs, err := queryStrings(ctx, db, "SHOW DATABASES")
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range dbs {
			if name == registryDB {
				t.Fatalf("tenant with schema %q sees the registry database", schema)
			}
		}
	}
}

// Two EnsureTenant calls for one schema with different uids at once: exactly one wins, and the
// loser created nothing.
func TestConcurrentClaimsOneWins(t *testing.T) {
	d, cfg := newDriver(t), mysqltest.DataStore(t)
	ctx := t.Context()
	for round := range 4 {
		schema := fmt.Sprintf("t_race_%d", round)
		a := newTenant("race-a", schema, schema+"_a")
		b := newTenant("race-b", schema, schema+"_b")
		if round%2 == 1 {
			b.Username = a.Username
		}
		dropByHand(t, a)
		dropByHand(t, b)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, tn := range []datastore.Tenant{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = d.EnsureTenant(ctx, cfg, tn)
			}()
		}
		wg.Wait()
		t.Cleanup(func() {
			_ = d.DeleteTenant(context.Background(), cfg, a)
			_ = d.DeleteTenant(context.Background(), cfg, b)
		})
		winner, loser, lerr := a, b, errs[1]
		if errs[0] != nil {
			winner, loser, lerr = b, a, errs[0]
		}
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("round %d: both or neither won: %v / %v", round, errs[0], errs[1])
		}
		ownedBy(t, lerr, "tenant.schema", winner.Owner())
		var grantee string
		if err := mysqltest.Root(t).QueryRowContext(ctx, "SELECT User FROM mysql.db WHERE Db = ?", grantPattern(schema)).Scan(&grantee); err != nil || grantee != winner.Username {
			t.Fatalf("round %d: database granted to %q (%v), want the winner %q", round, grantee, err, winner.Username)
		}
		if loser.Username != winner.Username {
			if left := residue(t, datastore.Tenant{Schema: "-", Username: loser.Username}); len(left) > 0 {
				t.Fatalf("round %d: the loser left %q", round, left)
			}
		}
		want := []string{"schema " + schema + " " + winner.UID, "user " + winner.Username + " " + winner.UID}
		if rows := registryRows(t, schema, a.Username, b.Username); strings.Join(rows, ",") != strings.Join(want, ",") {
			t.Fatalf("round %d: owner records %q, want %q", round, rows, want)
		}
	}
}

// A tenant made by a release that recorded no owner is adopted by the first EnsureTenant; one
// another account already reaches is not.
func TestLegacyAdoption(t *testing.T) {
	d, cfg := newDriver(t), mysqltest.DataStore(t)
	ctx := t.Context()
	legacy := func(tn datastore.Tenant) {
		t.Helper()
		dropByHand(t, tn)
		asAdmin(t, cfg,
			"CREATE DATABASE "+quoteIdent(tn.Schema)+" CHARACTER SET utf8mb4",
			"CREATE USER "+account(tn.Username, "%")+" IDENTIFIED BY 'legacy-0123'",
			"GRANT "+strings.Join(tenantPrivileges, ", ")+" ON "+quoteIdent(grantPattern(tn.Schema))+".* TO "+account(tn.Username, "%"))
	}

	old := newTenant("legacy", "t_legacy", "t_legacy")
	legacy(old)
	conn := ensure(t, d, cfg, old)
	if err := write(t, cfg, old, conn)(); err != nil {
		t.Fatal(err)
	}
	want := []string{"schema t_legacy " + old.UID, "user t_legacy " + old.UID}
	if rows := registryRows(t, old.Schema, old.Username); strings.Join(rows, ",") != strings.Join(want, ",") {
		t.Fatalf("owner records after adoption: %q, want %q", rows, want)
	}
	_, err := d.EnsureTenant(ctx, cfg, reborn(old))
	ownedBy(t, err, "tenant.schema", old.Owner())

	// What another account already reaches is not adopted, and nothing is recorded.
	root := mysqltest.Root(t)
	other := account("t_legacy_other", "%")
	if _, err := root.ExecContext(ctx, "CREATE USER "+other); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = root.Exec("DROP USER IF EXISTS " + other) })
	for _, c := range []struct {
		what, field, grant string
	}{
		{"a database another account is granted", "tenant.schema", "GRANT SELECT ON `t\\_legacy\\_shared`.* TO " + other},
		{"a database another account's wildcard grant covers", "tenant.schema", "GRANT SELECT ON `t\\_legacy\\_%`.* TO " + other},
		{"a table another account is granted", "tenant.schema", "GRANT SELECT ON `t_legacy_shared`.`kine` TO " + other},
		{"an account granted another database", "tenant.username", "GRANT SELECT ON `t\\_legacy`.* TO `t_legacy_shared`@`%`"},
	} {
		tn := newTenant("shared", "t_legacy_shared", "t_legacy_shared")
		legacy(tn)
		if strings.Contains(c.grant, "`kine`") {
			asAdmin(t, cfg, "CREATE TABLE `t_legacy_shared`.`kine` (id INT)")
		}
		if _, err := root.ExecContext(ctx, c.grant); err != nil {
			t.Fatal(err)
		}
		_, err := d.EnsureTenant(ctx, cfg, tn)
		var oe *sdk.OwnedError
		if !errors.As(err, &oe) || oe.Field != c.field {
			t.Fatalf("%s: %v, want ALREADY_EXISTS on %s", c.what, err, c.field)
		}
		if rows := registryRows(t, tn.Schema, tn.Username); len(rows) > 0 {
			t.Fatalf("%s: refused, yet recorded %q", c.what, rows)
		}
		// Nor does DeleteTenant take it.
		if err := d.DeleteTenant(ctx, cfg, tn); err != nil {
			t.Fatal(err)
		}
		left := residue(t, tn)
		if len(left) == 0 || len(registryRows(t, tn.Schema, tn.Username)) > 0 {
			t.Fatalf("%s: DeleteTenant of a tenant that does not own it left %q", c.what, left)
		}
		for _, stmt := range []string{"DROP DATABASE " + quoteIdent(tn.Schema), "DROP USER " + account(tn.Username, "%"), "REVOKE ALL PRIVILEGES, GRANT OPTION FROM " + other} {
			if _, err := root.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
	}
}

// Whatever part of a tenant exists, DeleteTenant removes it, and its owner records.
func TestHalfProvisionedTenantsLeaveNothing(t *testing.T) {
	d, cfg := newDriver(t), mysqltest.DataStore(t)
	ctx := t.Context()
	user := func(tn datastore.Tenant) string {
		return "CREATE USER " + account(tn.Username, "%") + " IDENTIFIED BY 'half-0123'"
	}
	grant := func(tn datastore.Tenant) string {
		return "GRANT " + strings.Join(tenantPrivileges, ", ") + " ON " + quoteIdent(grantPattern(tn.Schema)) + ".* TO " + account(tn.Username, "%")
	}
	database := func(tn datastore.Tenant) string { return "CREATE DATABASE " + quoteIdent(tn.Schema) }
	for _, c := range []struct {
		what  string
		claim bool
		make  func(tn datastore.Tenant) []string
	}{
		{"owner records only", true, func(datastore.Tenant) []string { return nil }},
		{"records and the database, not the user", true, func(tn datastore.Tenant) []string { return []string{database(tn)} }},
		{"records, database and user, not the grant", true, func(tn datastore.Tenant) []string { return []string{database(tn), user(tn)} }},
		{"records, user and grant, not the database", true, func(tn datastore.Tenant) []string { return []string{user(tn), grant(tn)} }},
		{"the database only, no record (an older release)", false, func(tn datastore.Tenant) []string { return []string{database(tn)} }},
		{"the user only, no record", false, func(tn datastore.Tenant) []string { return []string{user(tn)} }},
		{"all of it, no record", false, func(tn datastore.Tenant) []string { return []string{database(tn), user(tn), grant(tn)} }},
	} {
		t.Run(c.what, func(t *testing.T) {
			tn := newTenant("half", "t_half", "t_half")
			dropByHand(t, tn)
			if c.claim {
				claimByHand(t, d, cfg, tn)
			}
			if stmts := c.make(tn); len(stmts) > 0 {
				asAdmin(t, cfg, stmts...)
			}
			if err := d.DeleteTenant(ctx, cfg, tn); err != nil {
				t.Fatalf("DeleteTenant: %v", err)
			}
			if left := residue(t, tn); len(left) > 0 {
				t.Fatalf("left behind: %q", left)
			}
		})
	}
}
