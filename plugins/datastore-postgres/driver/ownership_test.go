package driver

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/openhcp/kamaji/plugins/datastore-postgres/internal/pgtest"
	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/conformance/kine"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// Ownership: the registry, twins, concurrent claims, legacy adoption and half-provisioned
// tenants, on the machine's server with an administrative role that is not a superuser
// (CREATEROLE CREATEDB only, see pgtest.DataStore).

// newTenant gives a tenant a uid derived from its names: the same tenant of another run (left
// over by an interrupted one) is the same owner.
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

// registryRows lists the owners recorded for the tenant's names, as "kind name uid".
func registryRows(t *testing.T, cfg datastore.Config, names ...string) []string {
	t.Helper()
	db := pgtest.RootOn(t, registryDB(cfg.Username))
	rows, err := db.QueryContext(t.Context(), "SELECT kind || ' ' || name || ' ' || owner_uid FROM public.owners WHERE name = ANY($1) ORDER BY 1", names)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// residue lists the roles, databases and owner records left of tn.
func residue(t *testing.T, cfg datastore.Config, tn datastore.Tenant) []string {
	t.Helper()
	root := pgtest.Root(t)
	var out []string
	var n int
	if err := root.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM pg_roles WHERE rolname = $1", tn.Username).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		out = append(out, "role "+tn.Username)
	}
	if err := root.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM pg_database WHERE datname = $1", tn.Schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		out = append(out, "database "+tn.Schema)
	}
	return append(out, registryRows(t, cfg, tn.Schema, tn.Username)...)
}

// asAdmin runs statements as the DataStore's administrative role, the way the plugin (or an
// older release of it) would have.
func asAdmin(t *testing.T, cfg datastore.Config, stmts ...string) {
	t.Helper()
	s, err := parseConfig(cfg, DefaultKineImage)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.connConfig(s.user, s.password, s.adminDB)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*c)
	defer db.Close()
	for _, stmt := range stmts {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

func asRoot(t *testing.T, stmts ...string) {
	t.Helper()
	for _, stmt := range stmts {
		if _, err := pgtest.Root(t).ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// claimByHand records tn's names as the plugin does before it creates anything.
func claimByHand(t *testing.T, d *Driver, cfg datastore.Config, tn datastore.Tenant) {
	t.Helper()
	s, err := parseConfig(cfg, DefaultKineImage)
	if err != nil {
		t.Fatal(err)
	}
	err = d.withClaims(t.Context(), s, func(tx *sql.Tx) error {
		for _, p := range [][2]string{{kindSchema, tn.Schema}, {kindUser, tn.Username}} {
			if _, err := tx.ExecContext(t.Context(), "INSERT INTO public.owners (kind, name, owner_namespace, owner_name, owner_uid) VALUES ($1, $2, $3, $4, $5)",
				p[0], p[1], tn.Namespace, tn.Name, tn.UID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
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
	cfg := datastore.Config{Endpoints: []string{"203.0.113.1:5432"}, Username: "kamaji_admin", Password: "x",
		Parameters: map[string]string{ParamAdminDatabase: "kamaji_maint"}}
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
		{"tenant.username", "s", "Kamaji_Admin"},
		{"tenant.username", "s", "postgres"},
		{"tenant.username", "s", "pg_monitor"},
		{"tenant.username", "s", "public"},
		{"tenant.username", "s", "current_user"},
		{"tenant.username", "s", strings.Repeat("u", 64)},
		{"tenant.schema", "postgres", "u"},
		{"tenant.schema", "template0", "u"},
		{"tenant.schema", "template1", "u"},
		{"tenant.schema", "kamaji_maint", "u"},
		{"tenant.schema", registryDB("kamaji_admin"), "u"},
		{"tenant.schema", "kamaji_registry", "u"},
		{"tenant.schema", "Upper", "u"},
		{"tenant.schema", strings.Repeat("s", 64), "u"},
		{"tenant.schema", "nul\x00", "u"},
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
	real := pgtest.DataStore(t)
	admin := newTenant("admin", "t_admin_tenant", real.Username)
	if _, err := d.EnsureTenant(t.Context(), real, admin); !isField(err, "tenant.username") {
		t.Errorf("EnsureTenant as the administrative role: %v, want INVALID_ARGUMENT naming tenant.username", err)
	}
	if err := d.DeleteTenant(t.Context(), real, admin); !isField(err, "tenant.username") {
		t.Errorf("DeleteTenant as the administrative role: %v, want INVALID_ARGUMENT naming tenant.username", err)
	}
	reg := newTenant("reg", registryDB(real.Username), "t_reg")
	if _, err := d.EnsureTenant(t.Context(), real, reg); !isField(err, "tenant.schema") {
		t.Errorf("EnsureTenant on the registry database: %v, want INVALID_ARGUMENT naming tenant.schema", err)
	}
}

// Three twins of a tenant are refused, naming the owner, and their DeleteTenant leaves the
// victim's data, role, database and grants as they were.
func TestTwinsAreRefusedAndHarmless(t *testing.T) {
	d, cfg := newDriver(t), pgtest.DataStore(t)
	ctx := t.Context()
	victim := newTenant("victim", "t_twin_victim", "t_twin_victim")
	conn := ensure(t, d, cfg, victim)
	readBack := write(t, cfg, victim, conn)

	state := func() string {
		var s string
		err := pgtest.Root(t).QueryRowContext(ctx, `SELECT concat_ws(' | ', pg_get_userbyid(d.datdba), d.datacl::text, r.rolcanlogin::text, r.rolpassword,
			(SELECT string_agg(pg_get_userbyid(m.member), ',') FROM pg_auth_members m WHERE m.roleid = r.oid))
			FROM pg_database d, pg_authid r WHERE d.datname = $1 AND r.rolname = $2`, victim.Schema, victim.Username).Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before, rowsBefore := state(), registryRows(t, cfg, victim.Schema, victim.Username)
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
			t.Fatalf("after the twin (%s) came and went, the victim's database and role changed:\n%s\n%s", tw.what, before, after)
		}
		if rows := registryRows(t, cfg, victim.Schema, victim.Username); strings.Join(rows, ",") != strings.Join(rowsBefore, ",") {
			t.Fatalf("after the twin (%s), owner records %q, want %q", tw.what, rows, rowsBefore)
		}
		if err := readBack(); err != nil {
			t.Fatalf("after the twin (%s): %v", tw.what, err)
		}
		// The names only the twin asked for were not taken.
		if left := residue(t, cfg, datastore.Tenant{Schema: "t_twin_other_schema", Username: "t_twin_other_user"}); len(left) > 0 {
			t.Fatalf("the twin (%s) left %q", tw.what, left)
		}
	}
	// And the victim is still whole for EnsureTenant.
	if again := ensure(t, d, cfg, victim); again.Kine.Env[0].Value != conn.Kine.Env[0].Value {
		t.Error("the victim's password changed")
	}
}

// The registry lives in a database no tenant may connect to, in a table no tenant may read.
func TestRegistryIsPrivate(t *testing.T) {
	d, cfg := newDriver(t), pgtest.DataStore(t)
	ctx := t.Context()
	tn := newTenant("private", "t_private", "t_private")
	conn := ensure(t, d, cfg, tn)
	s, err := parseConfig(cfg, DefaultKineImage)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.connConfig(tn.Username, conn.Kine.Env[0].Value, registryDB(cfg.Username))
	if err != nil {
		t.Fatal(err)
	}
	tenantDB := stdlib.OpenDB(*c)
	defer tenantDB.Close()
	if err := tenantDB.PingContext(ctx); pgCode(err) != "42501" {
		t.Fatalf("tenant connecting to the registry database: %v, want insufficient_privilege", err)
	}
	// Even connected (as a superuser, then acting as the tenant), it reads nothing.
	tx, err := pgtest.RootOn(t, registryDB(cfg.Username)).BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck
	if _, err := tx.ExecContext(ctx, "SET LOCAL ROLE "+quoteIdent(tn.Username)); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM public.owners").Scan(&n); pgCode(err) != "42501" {
		t.Fatalf("tenant reading the registry table: %d %v, want insufficient_privilege", n, err)
	}
}

// Two EnsureTenant calls for one schema with different uids at once: exactly one wins, and the
// loser created nothing.
func TestConcurrentClaimsOneWins(t *testing.T) {
	d, cfg := newDriver(t), pgtest.DataStore(t)
	ctx := t.Context()
	for round := range 4 {
		schema := fmt.Sprintf("t_race_%d", round)
		// Half the rounds with the same username, half with two.
		a := newTenant("race-a", schema, schema+"_a")
		b := newTenant("race-b", schema, schema+"_b")
		if round%2 == 1 {
			b.Username = a.Username
		}
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
		var owner string
		if err := pgtest.Root(t).QueryRowContext(ctx, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", schema).Scan(&owner); err != nil || owner != winner.Username {
			t.Fatalf("round %d: database owned by %q (%v), want the winner %q", round, owner, err, winner.Username)
		}
		if loser.Username != winner.Username {
			if left := residue(t, cfg, datastore.Tenant{Schema: "-", Username: loser.Username}); len(left) > 0 {
				t.Fatalf("round %d: the loser left %q", round, left)
			}
		}
		want := []string{"schema " + schema + " " + winner.UID, "user " + winner.Username + " " + winner.UID}
		if rows := registryRows(t, cfg, schema, a.Username, b.Username); strings.Join(rows, ",") != strings.Join(want, ",") {
			t.Fatalf("round %d: owner records %q, want %q", round, rows, want)
		}
	}
}

// A tenant made by a release that recorded no owner is adopted by the first EnsureTenant; one
// another role already reaches is not.
func TestLegacyAdoption(t *testing.T) {
	d, cfg := newDriver(t), pgtest.DataStore(t)
	ctx := t.Context()
	legacy := func(tn datastore.Tenant) {
		t.Helper()
		asAdmin(t, cfg,
			"CREATE ROLE "+quoteIdent(tn.Username)+" "+roleAttributes+" PASSWORD 'legacy-0123'",
			"GRANT "+quoteIdent(tn.Username)+" TO CURRENT_USER",
			"CREATE DATABASE "+quoteIdent(tn.Schema)+" OWNER "+quoteIdent(tn.Username)+" TEMPLATE template0",
			"REVOKE ALL ON DATABASE "+quoteIdent(tn.Schema)+" FROM PUBLIC")
		root := pgtest.Root(t)
		t.Cleanup(func() {
			_, _ = root.Exec("DROP DATABASE IF EXISTS " + quoteIdent(tn.Schema) + " WITH (FORCE)")
			_, _ = root.Exec("DROP ROLE IF EXISTS " + quoteIdent(tn.Username))
		})
	}

	old := newTenant("legacy", "t_legacy", "t_legacy")
	legacy(old)
	conn := ensure(t, d, cfg, old)
	write(t, cfg, old, conn)
	want := []string{"schema t_legacy " + old.UID, "user t_legacy " + old.UID}
	if rows := registryRows(t, cfg, old.Schema, old.Username); strings.Join(rows, ",") != strings.Join(want, ",") {
		t.Fatalf("owner records after adoption: %q, want %q", rows, want)
	}
	_, err := d.EnsureTenant(ctx, cfg, reborn(old))
	ownedBy(t, err, "tenant.schema", old.Owner())

	// What another role already reaches is not adopted, and nothing is recorded.
	other := "t_legacy_other"
	asRoot(t, "CREATE ROLE "+other+" LOGIN")
	root := pgtest.Root(t)
	t.Cleanup(func() { _, _ = root.Exec("DROP ROLE IF EXISTS " + other) })
	for _, c := range []struct {
		what, field, grant string
	}{
		{"a role granted to another", "tenant.username", "GRANT %[2]s TO " + other},
		{"a database another role may connect to", "tenant.schema", "GRANT CONNECT ON DATABASE %[1]s TO " + other},
		{"a role granted another database", "tenant.username", "GRANT CONNECT ON DATABASE postgres TO %[2]s"},
	} {
		tn := newTenant("shared", "t_legacy_shared", "t_legacy_shared")
		legacy(tn)
		asRoot(t, fmt.Sprintf(c.grant, quoteIdent(tn.Schema), quoteIdent(tn.Username)))
		_, err := d.EnsureTenant(ctx, cfg, tn)
		var oe *sdk.OwnedError
		if !errors.As(err, &oe) || oe.Field != c.field {
			t.Fatalf("%s: %v, want ALREADY_EXISTS on %s", c.what, err, c.field)
		}
		if rows := registryRows(t, cfg, tn.Schema, tn.Username); len(rows) > 0 {
			t.Fatalf("%s: refused, yet recorded %q", c.what, rows)
		}
		// Nor does DeleteTenant take it.
		if err := d.DeleteTenant(ctx, cfg, tn); err != nil {
			t.Fatal(err)
		}
		left := residue(t, cfg, tn)
		if len(left) == 0 || len(registryRows(t, cfg, tn.Schema, tn.Username)) > 0 {
			t.Fatalf("%s: DeleteTenant of a tenant that does not own it left %q", c.what, left)
		}
		asRoot(t, "DROP DATABASE "+quoteIdent(tn.Schema)+" WITH (FORCE)", "DROP OWNED BY "+quoteIdent(tn.Username), "DROP ROLE "+quoteIdent(tn.Username))
	}
}

// Whatever part of a tenant exists, DeleteTenant removes it, and its owner records, with an
// administrative role that is not a superuser.
func TestHalfProvisionedTenantsLeaveNothing(t *testing.T) {
	d, cfg := newDriver(t), pgtest.DataStore(t)
	ctx := t.Context()
	var attrs string
	err := pgtest.Root(t).QueryRowContext(ctx, "SELECT concat_ws(' ', rolsuper, rolcreatedb, rolcreaterole, rolinherit) FROM pg_roles WHERE rolname = $1", cfg.Username).Scan(&attrs)
	if err != nil || attrs != "f t t t" {
		t.Fatalf("administrative role: superuser, createdb, createrole, inherit = %s (%v), want a CREATEDB CREATEROLE role that is not a superuser", attrs, err)
	}
	role := func(tn datastore.Tenant) string {
		return "CREATE ROLE " + quoteIdent(tn.Username) + " " + roleAttributes
	}
	for _, c := range []struct {
		what  string
		claim bool
		make  func(tn datastore.Tenant)
	}{
		{"owner records only", true, func(datastore.Tenant) {}},
		{"records and the role, not the database", true, func(tn datastore.Tenant) {
			asAdmin(t, cfg, role(tn), "GRANT "+quoteIdent(tn.Username)+" TO CURRENT_USER")
		}},
		{"records and the database, not the role", true, func(tn datastore.Tenant) {
			asAdmin(t, cfg, "CREATE DATABASE "+quoteIdent(tn.Schema)+" TEMPLATE template0")
		}},
		{"the role only, no record (an older release)", false, func(tn datastore.Tenant) {
			asAdmin(t, cfg, role(tn))
		}},
		// The administrative role is no member of the tenant's: "must be owner of database".
		{"role and database made by a superuser, no record", false, func(tn datastore.Tenant) {
			asRoot(t, role(tn), "CREATE DATABASE "+quoteIdent(tn.Schema)+" OWNER "+quoteIdent(tn.Username)+" TEMPLATE template0")
		}},
		{"records, role and database, the administrative role no member", true, func(tn datastore.Tenant) {
			asRoot(t, role(tn), "CREATE DATABASE "+quoteIdent(tn.Schema)+" OWNER "+quoteIdent(tn.Username)+" TEMPLATE template0")
		}},
	} {
		t.Run(c.what, func(t *testing.T) {
			tn := newTenant("half", "t_half", "t_half")
			root := pgtest.Root(t)
			t.Cleanup(func() { // when the test fails
				_, _ = root.Exec("DROP DATABASE IF EXISTS t_half WITH (FORCE)")
				_, _ = root.Exec("DROP ROLE IF EXISTS t_half")
			})
			if c.claim {
				claimByHand(t, d, cfg, tn)
			}
			c.make(tn)
			if err := d.DeleteTenant(ctx, cfg, tn); err != nil {
				t.Fatalf("DeleteTenant: %v", err)
			}
			if left := residue(t, cfg, tn); len(left) > 0 {
				t.Fatalf("left behind: %q", left)
			}
		})
	}
}

// A DeleteTenant that stopped after disabling the role (it used to, on "must be owner of
// database") left a role no password logs in as: EnsureTenant enables it again rather than
// failing on every reconcile.
func TestEnsureAfterAnInterruptedDelete(t *testing.T) {
	d, cfg := newDriver(t), pgtest.DataStore(t)
	tn := newTenant("again", "t_again", "t_again")
	ensure(t, d, cfg, tn)
	asRoot(t, "ALTER ROLE "+quoteIdent(tn.Username)+" NOLOGIN", "REVOKE "+quoteIdent(tn.Username)+" FROM "+quoteIdent(cfg.Username))
	conn := ensure(t, d, cfg, tn)
	if err := write(t, cfg, tn, conn)(); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteTenant(t.Context(), cfg, tn); err != nil {
		t.Fatal(err)
	}
	if left := residue(t, cfg, tn); len(left) > 0 {
		t.Fatalf("left behind: %q", left)
	}
}

// A registry dropped behind the plugin's back is created again (its records are lost: the
// tenants are then adopted as unrecorded).
func TestRegistryDroppedIsRecreated(t *testing.T) {
	d, cfg := newDriver(t), pgtest.DataStore(t)
	a := newTenant("a", "t_regdrop_a", "t_regdrop_a")
	ensure(t, d, cfg, a)
	asRoot(t, "DROP DATABASE "+quoteIdent(registryDB(cfg.Username))+" WITH (FORCE)")
	b := newTenant("b", "t_regdrop_b", "t_regdrop_b")
	ensure(t, d, cfg, b)
	ensure(t, d, cfg, a)
	want := []string{"schema t_regdrop_a " + a.UID, "schema t_regdrop_b " + b.UID, "user t_regdrop_a " + a.UID, "user t_regdrop_b " + b.UID}
	if rows := registryRows(t, cfg, a.Schema, b.Schema); strings.Join(rows, ",") != strings.Join(want, ",") {
		t.Fatalf("owner records %q, want %q", rows, want)
	}
}
