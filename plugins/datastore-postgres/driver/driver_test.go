package driver

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/plugins/datastore-postgres/internal/pgtest"
	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/conformance/kine"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// The checks every driver must pass live in the conformance kit (see ../conformance_test.go);
// these cover what is specific to PostgreSQL.

func newDriver(t *testing.T) *Driver {
	d := New(Options{})
	t.Cleanup(d.Close)
	return d
}

func ensure(t *testing.T, d *Driver, cfg datastore.Config, tn datastore.Tenant) datastore.Connection {
	t.Helper()
	conn, err := d.EnsureTenant(t.Context(), cfg, tn)
	if err != nil {
		t.Fatalf("EnsureTenant(%q, %q): %v", tn.Schema, tn.Username, err)
	}
	t.Cleanup(func() { _ = d.DeleteTenant(context.Background(), cfg, tn) })
	return conn
}

// Hostile names are quoted everywhere: in SQL, in kine's URL and in the kubelet's $(VAR)
// expansion.
func TestHostileNames(t *testing.T) {
	d, cfg := newDriver(t), pgtest.DataStore(t)
	ctx := t.Context()
	backend := kine.Backend{}
	for _, name := range []string{
		"q'uo\"te`s",
		"semi;colon; drop database postgres; --",
		"tëst 日本語",
		`back\slash_under%pct`,
		"dollar$(home)$$x",
		"sl/ash?@:x(y)#frag",
	} {
		t.Run(name, func(t *testing.T) {
			tn := newTenant("hostile", name, "U"+name)
			conn := ensure(t, d, cfg, tn)
			s, err := backend.Open(ctx, cfg, tn, conn)
			if err != nil {
				t.Fatalf("open a session with the sidecar's credentials: %v", err)
			}
			defer s.Close()
			key := s.Prefix() + "registry/x"
			if err := s.Put(ctx, key, []byte("v")); err != nil {
				t.Fatal(err)
			}
			if v, ok, err := s.Get(ctx, key); err != nil || !ok || string(v) != "v" {
				t.Fatalf("get: %q %v %v", v, ok, err)
			}
			if err := d.DeleteTenant(ctx, cfg, tn); err != nil {
				t.Fatal(err)
			}
			res, err := backend.Residue(ctx, cfg, tn, conn)
			if err != nil || len(res) > 0 {
				t.Fatalf("residue after DeleteTenant: %v %v", res, err)
			}
		})
	}
	var n int
	if err := pgtest.Root(t).QueryRowContext(ctx, "SELECT COUNT(*) FROM pg_database WHERE datname = 'postgres'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("postgres database: %d %v", n, err)
	}
	// kine lowercases the database name: an upper-case schema cannot work and is refused.
	if _, err := d.EnsureTenant(ctx, cfg, datastore.Tenant{Schema: "Upper", Username: "u"}); !isField(err, "tenant.schema") {
		t.Errorf("upper-case schema: %v, want INVALID_ARGUMENT naming tenant.schema", err)
	}
	if _, err := d.EnsureTenant(ctx, cfg, datastore.Tenant{Schema: strings.Repeat("x", 64), Username: "u"}); !isField(err, "tenant.schema") {
		t.Errorf("64-byte schema: %v, want INVALID_ARGUMENT naming tenant.schema", err)
	}
}

func TestPasswordIsNotRewritten(t *testing.T) {
	d, cfg := newDriver(t), pgtest.DataStore(t)
	ctx := t.Context()
	tn := newTenant("pw", "kamaji_pw", "kamaji_pw")
	first := ensure(t, d, cfg, tn)
	verifier := func() string {
		var v sql.NullString
		if err := pgtest.Root(t).QueryRowContext(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", tn.Username).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v.String
	}
	before := verifier()
	if !strings.HasPrefix(before, "SCRAM-SHA-256$4096:") {
		t.Fatalf("stored password %.20q..., want a SCRAM-SHA-256 verifier", before)
	}
	second := ensure(t, d, cfg, tn)
	if after := verifier(); after != before {
		t.Error("the second EnsureTenant rewrote the password (its salted verifier changed)")
	}
	if first.Kine.Env[0].Value != second.Kine.Env[0].Value {
		t.Error("the second EnsureTenant returned another password")
	}
	for _, a := range first.Kine.Args {
		if strings.Contains(a, first.Kine.Env[0].Value) {
			t.Errorf("the password appears in argument %q", a)
		}
	}
	if !first.Kine.Env[0].Secret {
		t.Error("the password variable is not marked Secret")
	}
}

// Rotating the DataStore's password rotates the tenant's at the next EnsureTenant. (The
// machine's server trusts loopback connections, so that the old password stops working is
// checked by the TLS test, on a server of its own with SCRAM authentication.)
func TestPasswordFollowsDataStoreSecret(t *testing.T) {
	d, cfg := newDriver(t), pgtest.DataStore(t)
	tn := newTenant("rot", "kamaji_rot", "kamaji_rot")
	old := ensure(t, d, cfg, tn)
	rotated := cfg
	rotated.Password = "rotated-0123"
	conn := ensure(t, d, rotated, tn)
	if conn.Kine.Env[0].Value == old.Kine.Env[0].Value {
		t.Fatal("same tenant password after the DataStore's rotation")
	}
}

func TestCollisionsAreRefused(t *testing.T) {
	d, cfg := newDriver(t), pgtest.DataStore(t)
	ctx := t.Context()
	owner := newTenant("a", "kamaji_col_a", "kamaji_col_shared")
	ensure(t, d, cfg, owner)

	intruder := newTenant("b", "kamaji_col_b", "kamaji_col_shared")
	_, err := d.EnsureTenant(ctx, cfg, intruder)
	ownedBy(t, err, "tenant.username", owner.Owner())
	// Cleaning up the refused tenant must not take the owner's account with it.
	if err := d.DeleteTenant(ctx, cfg, intruder); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pgtest.Root(t).QueryRowContext(ctx, "SELECT COUNT(*) FROM pg_database WHERE datname = 'kamaji_col_a' AND pg_get_userbyid(datdba) = $1", owner.Username).Scan(&n); err != nil || n != 1 {
		t.Fatalf("owner's database after the intruder's cleanup: %d %v", n, err)
	}

	squatter := newTenant("c", "kamaji_col_a", "kamaji_col_c")
	_, err = d.EnsureTenant(ctx, cfg, squatter)
	ownedBy(t, err, "tenant.schema", owner.Owner())
	// Cleaning up the refused tenant must not drop the owner's database.
	if err := d.DeleteTenant(ctx, cfg, squatter); err != nil {
		t.Fatal(err)
	}
	if err := pgtest.Root(t).QueryRowContext(ctx, "SELECT COUNT(*) FROM pg_database WHERE datname = 'kamaji_col_a'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("owner's database after the squatter's cleanup: %d %v", n, err)
	}

	// A role that is not a tenant's, with no owner record, is refused too, and left alone.
	if _, err := pgtest.Root(t).ExecContext(ctx, "CREATE ROLE kamaji_col_admin LOGIN CREATEDB"); err != nil {
		t.Fatal(err)
	}
	root := pgtest.Root(t)
	t.Cleanup(func() { _, _ = root.Exec("DROP ROLE IF EXISTS kamaji_col_admin") })
	powerful := newTenant("d", "kamaji_col_d", "kamaji_col_admin")
	var oe *sdk.OwnedError
	if _, err := d.EnsureTenant(ctx, cfg, powerful); !errors.As(err, &oe) || oe.Field != "tenant.username" {
		t.Fatalf("EnsureTenant with a role that has CREATEDB = %v, want ALREADY_EXISTS on tenant.username", err)
	}
	if err := d.DeleteTenant(ctx, cfg, powerful); err != nil {
		t.Fatal(err)
	}
	if err := pgtest.Root(t).QueryRowContext(ctx, "SELECT COUNT(*) FROM pg_roles WHERE rolname = 'kamaji_col_admin' AND rolcanlogin").Scan(&n); err != nil || n != 1 {
		t.Fatalf("the role after the refused tenant's cleanup: %d %v", n, err)
	}

	if _, err := d.EnsureTenant(ctx, cfg, datastore.Tenant{Schema: "x", Username: "pg_monitor"}); !isField(err, "tenant.username") {
		t.Fatalf("EnsureTenant as pg_monitor = %v, want INVALID_ARGUMENT naming tenant.username", err)
	}
	// One pool on the administrative database, one on the owner registry.
	if n := d.pool.Len(); n != 2 {
		t.Errorf("%d cached connection pools for one configuration, want 2", n)
	}
}

func isField(err error, field string) bool {
	fe, ok := err.(*sdk.FieldError)
	return ok && fe.Field == field
}

func TestValidateConfigReportsTheCause(t *testing.T) {
	d, cfg := newDriver(t), pgtest.DataStore(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	down := cfg
	down.Endpoints = []string{"127.0.0.1:1"}
	if err := d.ValidateConfig(ctx, down); status.Code(err) != codes.Unavailable {
		t.Errorf("unreachable server: %v, want Unavailable", err)
	}
	missing := cfg
	missing.Parameters = map[string]string{"adminDatabase": "nope", "sslmode": "disable"}
	if err := d.ValidateConfig(ctx, missing); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "adminDatabase") {
		t.Errorf("missing admin database: %v, want FailedPrecondition naming parameters.adminDatabase", err)
	}
	for _, c := range []struct {
		field string
		edit  func(*datastore.Config)
	}{
		{"endpoints", func(c *datastore.Config) { c.Endpoints = []string{"a:1", "b:2"} }},
		{"endpoints[0]", func(c *datastore.Config) { c.Endpoints = []string{"http://x:1"} }},
		{"endpoints[0]", func(c *datastore.Config) { c.Endpoints = []string{"x:99999"} }},
		{"username", func(c *datastore.Config) { c.Username = "" }},
		{"password", func(c *datastore.Config) { c.Password = "" }},
		{"caCert", func(c *datastore.Config) { c.CACert = []byte("nope") }},
		{"clientKey", func(c *datastore.Config) { c.ClientCert = []byte("x") }},
		{"parameters.bogus", func(c *datastore.Config) { c.Parameters = map[string]string{"bogus": "1"} }},
		{"parameters.sslmode", func(c *datastore.Config) { c.Parameters = map[string]string{"sslmode": "sometimes"} }},
		{"parameters.tenantClientCertificate", func(c *datastore.Config) {
			c.Parameters = map[string]string{"tenantClientCertificate": "true"}
		}},
	} {
		bad := cfg
		c.edit(&bad)
		if err := d.ValidateConfig(ctx, bad); !isField(err, c.field) {
			t.Errorf("%s: %v, want INVALID_ARGUMENT naming it", c.field, err)
		}
	}

	// A role without CREATEROLE is refused with the reason.
	root := pgtest.Root(t)
	if _, err := root.ExecContext(ctx, `CREATE ROLE kamaji_weak LOGIN PASSWORD 'weak-0123'`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = root.Exec("DROP ROLE IF EXISTS kamaji_weak") })
	weak := cfg
	weak.Username, weak.Password = "kamaji_weak", "weak-0123"
	if err := d.ValidateConfig(ctx, weak); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "CREATEROLE") {
		t.Errorf("role without privileges: %v, want PermissionDenied naming CREATEROLE", err)
	}
}

func TestSidecar(t *testing.T) {
	s, err := parseConfig(datastore.Config{
		Endpoints: []string{"db.example:5433"}, Username: "admin", Password: "pw", CACert: testkit.NewCA(t).Cert,
		Parameters: map[string]string{"kineImage": "example/kine:1"},
	}, DefaultKineImage)
	if err != nil {
		t.Fatal(err)
	}
	k := s.sidecar(names{db: "a/b$c", role: "u$er@x"}, "0123abcd")
	want := []string{
		"--endpoint=postgres://u$$er%40x:$(KINE_DB_PASSWORD)@db.example:5433/a%2Fb$$c",
		"--listen-address=127.0.0.1:2379",
		"--metrics-bind-address=0",
		"--ca-file=/etc/kine/ca.crt",
	}
	if strings.Join(k.Args, " ") != strings.Join(want, " ") {
		t.Errorf("args:\n got %q\nwant %q", k.Args, want)
	}
	if k.Image != "example/kine:1" || k.ListenEndpoint != "http://127.0.0.1:2379" {
		t.Errorf("image %q, listen %q", k.Image, k.ListenEndpoint)
	}
	if len(k.Env) != 1 || k.Env[0].Name != PasswordEnv || !k.Env[0].Secret || k.Env[0].Value != "0123abcd" {
		t.Errorf("env %+v", k.Env)
	}
	if len(k.Files) != 1 || k.Files[0].Path != "/etc/kine/ca.crt" {
		t.Errorf("files %+v", k.Files)
	}
}

// On a server that checks passwords (SCRAM, TLS only): a tenant's password does not log in as
// another tenant, and after the DataStore's password rotates the old tenant password stops
// working while the new one works.
func TestPasswordsOnAScramServer(t *testing.T) {
	d, cfg := newDriver(t), pgtest.StartTLS(t)
	ctx := t.Context()
	s, err := parseConfig(cfg, DefaultKineImage)
	if err != nil {
		t.Fatal(err)
	}
	login := func(role, password, db string) error {
		c, err := s.connConfig(role, password, db)
		if err != nil {
			return err
		}
		conn := stdlib.OpenDB(*c)
		defer conn.Close()
		return conn.PingContext(ctx)
	}
	a := newTenant("a", "kamaji_a", "kamaji_a")
	b := newTenant("b", "kamaji_b", "kamaji_b")
	ca, cb := ensure(t, d, cfg, a), ensure(t, d, cfg, b)
	pwA, pwB := ca.Kine.Env[0].Value, cb.Kine.Env[0].Value
	if err := login("kamaji_a", pwA, "kamaji_a"); err != nil {
		t.Fatalf("tenant a with its password: %v", err)
	}
	if err := login("kamaji_b", pwA, "kamaji_b"); pgCode(err) != "28P01" {
		t.Fatalf("tenant a's password as tenant b: %v, want invalid_password", err)
	}
	if err := login("kamaji_b", pwB, "kamaji_a"); pgCode(err) != "42501" {
		t.Fatalf("tenant b on tenant a's database: %v, want insufficient_privilege", err)
	}

	admin, release, err := d.admin(s)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := admin.ExecContext(ctx, "ALTER ROLE postgres PASSWORD 'rotated-0123'"); err != nil {
		t.Fatal(err)
	}
	rotated := cfg
	rotated.Password = "rotated-0123"
	conn := ensure(t, d, rotated, a)
	if err := login("kamaji_a", conn.Kine.Env[0].Value, "kamaji_a"); err != nil {
		t.Fatalf("the new tenant password: %v", err)
	}
	if err := login("kamaji_a", pwA, "kamaji_a"); pgCode(err) != "28P01" {
		t.Fatalf("the old tenant password after rotation: %v, want invalid_password", err)
	}
	t.Cleanup(func() {
		_ = d.DeleteTenant(context.Background(), rotated, a)
		_ = d.DeleteTenant(context.Background(), rotated, b)
	})
}
