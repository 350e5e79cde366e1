package driver

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/conformance/kine"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit"
	"github.com/openhcp/kamaji/sdk/testkit/mysqltest"
)

// The checks every driver must pass live in the conformance kit (see ../conformance_test.go);
// these cover what is specific to MySQL.

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

// Hostile names are quoted everywhere: in SQL, in the grant pattern (where _ and % are
// wildcards), in kine's DSN and in the kubelet's $(VAR) expansion.
func TestHostileNames(t *testing.T) {
	d, cfg := newDriver(t), mysqltest.DataStore(t)
	ctx := t.Context()
	backend := kine.Backend{}
	for _, name := range []string{
		"q'uo\"te`s",
		"semi;colon; DROP DATABASE mysql; --",
		"tëst 日本語",
		`back\slash_under%pct`,
		"dollar$(HOME)$$x",
		"sl/ash?@:x(y)",
	} {
		t.Run(name, func(t *testing.T) {
			tn := newTenant("hostile", name, strings.ReplaceAll(name, ":", "-")+"_u")
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
	// The system databases are still there.
	var n int
	if err := mysqltest.Root(t).QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE schema_name = 'mysql'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("mysql database: %d %v", n, err)
	}
}

// A tenant whose database name holds a GRANT wildcard must not reach a database the wildcard
// would match.
func TestGrantWildcardsAreEscaped(t *testing.T) {
	d, cfg := newDriver(t), mysqltest.DataStore(t)
	ctx := t.Context()
	a := newTenant("a", "kamaji_wc_a", "kamaji_wc_a")
	b := newTenant("b", "kamajiXwcXa", "kamaji_wc_b")
	connA, connB := ensure(t, d, cfg, a), ensure(t, d, cfg, b)
	backend := kine.Backend{}
	sa, err := backend.Open(ctx, cfg, a, connA)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sb, err := backend.Open(ctx, cfg, b, connB)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if err := sb.Put(ctx, sb.Prefix()+"secret", []byte("b")); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := sa.Get(ctx, sb.Prefix()+"secret"); err == nil || ok {
		t.Fatalf("tenant kamaji_wc_a read database kamajiXwcXa: %q %v %v", v, ok, err)
	}
}

func TestPasswordIsNotRewritten(t *testing.T) {
	d, cfg := newDriver(t), mysqltest.DataStore(t)
	ctx := t.Context()
	tn := newTenant("pw", "kamaji_pw", "kamaji_pw")
	first := ensure(t, d, cfg, tn)
	changed := func() string {
		var v sql.NullString
		err := mysqltest.Root(t).QueryRowContext(ctx,
			"SELECT JSON_VALUE(Priv, '$.password_last_changed') FROM mysql.global_priv WHERE User = ? AND Host = '%'", tn.Username).Scan(&v)
		if err != nil {
			t.Fatal(err)
		}
		return v.String
	}
	before := changed()
	waitNextSecond(t) // password_last_changed has a one-second resolution
	second := ensure(t, d, cfg, tn)
	if after := changed(); after != before {
		t.Errorf("the second EnsureTenant rewrote the password (password_last_changed %s -> %s)", before, after)
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

// Rotating the DataStore's password rotates the tenant's at the next EnsureTenant.
func TestPasswordFollowsDataStoreSecret(t *testing.T) {
	d, cfg := newDriver(t), mysqltest.DataStore(t)
	ctx := t.Context()
	tn := newTenant("rot", "kamaji_rot", "kamaji_rot")
	old := ensure(t, d, cfg, tn)
	root := mysqltest.Root(t)
	if _, err := root.ExecContext(ctx, "ALTER USER `"+cfg.Username+"`@`%` IDENTIFIED BY 'rotated-0123'"); err != nil {
		t.Fatal(err)
	}
	rotated := cfg
	rotated.Password = "rotated-0123"
	conn := ensure(t, d, rotated, tn)
	if conn.Kine.Env[0].Value == old.Kine.Env[0].Value {
		t.Fatal("same tenant password after the DataStore's rotation")
	}
	s, err := kine.Backend{}.Open(ctx, rotated, tn, conn)
	if err != nil {
		t.Fatalf("the new password does not work: %v", err)
	}
	s.Close()
	if s, err := (kine.Backend{}).Open(ctx, cfg, tn, old); err == nil {
		s.Close()
		t.Fatal("the old password still works")
	}
}

func TestCollisionsAreRefused(t *testing.T) {
	d, cfg := newDriver(t), mysqltest.DataStore(t)
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
	if err := mysqltest.Root(t).QueryRowContext(ctx, "SELECT COUNT(*) FROM mysql.db WHERE User = ? AND Db = 'kamaji\\_col\\_a'", owner.Username).Scan(&n); err != nil || n != 1 {
		t.Fatalf("owner's grant after the intruder's cleanup: %d %v", n, err)
	}

	squatter := newTenant("c", "kamaji_col_a", "kamaji_col_c")
	_, err = d.EnsureTenant(ctx, cfg, squatter)
	ownedBy(t, err, "tenant.schema", owner.Owner())
	// Cleaning up the refused tenant must not drop the owner's database.
	if err := d.DeleteTenant(ctx, cfg, squatter); err != nil {
		t.Fatal(err)
	}
	if err := mysqltest.Root(t).QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE schema_name = 'kamaji_col_a'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("owner's database after the squatter's cleanup: %d %v", n, err)
	}

	// An account that is not a tenant's, with no owner record, is refused too, and left alone.
	root := mysqltest.Root(t)
	if _, err := root.ExecContext(ctx, "CREATE USER `kamaji_col_app`@`%`"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = root.Exec("DROP USER IF EXISTS `kamaji_col_app`@`%`") })
	if _, err := root.ExecContext(ctx, "GRANT SELECT ON `mysql`.* TO `kamaji_col_app`@`%`"); err != nil {
		t.Fatal(err)
	}
	app := newTenant("d", "kamaji_col_d", "kamaji_col_app")
	var oe *sdk.OwnedError
	if _, err := d.EnsureTenant(ctx, cfg, app); !errors.As(err, &oe) || oe.Field != "tenant.username" {
		t.Fatalf("EnsureTenant with an account granted the mysql database = %v, want ALREADY_EXISTS on tenant.username", err)
	}
	if err := d.DeleteTenant(ctx, cfg, app); err != nil {
		t.Fatal(err)
	}
	if err := root.QueryRowContext(ctx, "SELECT COUNT(*) FROM mysql.user WHERE User = 'kamaji_col_app'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("the account after the refused tenant's cleanup: %d %v", n, err)
	}
	if _, err := d.EnsureTenant(ctx, cfg, datastore.Tenant{Schema: "x", Username: "root"}); !isField(err, "tenant.username") {
		t.Fatalf("EnsureTenant as root = %v, want INVALID_ARGUMENT naming tenant.username", err)
	}
	if n := d.pool.Len(); n != 1 {
		t.Errorf("%d cached connection pools for one configuration, want 1", n)
	}
}

func isField(err error, field string) bool {
	fe, ok := err.(*sdk.FieldError)
	return ok && fe.Field == field
}

func TestValidateConfigReportsTheCause(t *testing.T) {
	d, cfg := newDriver(t), mysqltest.DataStore(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	down := cfg
	down.Endpoints = []string{"127.0.0.1:1"}
	if err := d.ValidateConfig(ctx, down); status.Code(err) != codes.Unavailable {
		t.Errorf("unreachable server: %v, want Unavailable", err)
	}
	wrong := cfg
	wrong.Password = "wrong"
	if err := d.ValidateConfig(ctx, wrong); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "password") {
		t.Errorf("wrong password: %v, want PermissionDenied naming password", err)
	}
	if strings.Contains(status.Convert(d.ValidateConfig(ctx, wrong)).Message(), "wrong") {
		t.Error("the error shows the password")
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

	// An account without CREATE USER is refused with the reason.
	root := mysqltest.Root(t)
	if _, err := root.ExecContext(ctx, "CREATE USER `kamaji_weak`@`%` IDENTIFIED BY 'weak-0123'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = root.Exec("DROP USER IF EXISTS `kamaji_weak`@`%`") })
	weak := cfg
	weak.Username, weak.Password = "kamaji_weak", "weak-0123"
	if err := d.ValidateConfig(ctx, weak); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "CREATE USER") {
		t.Errorf("account without privileges: %v, want PermissionDenied naming CREATE USER", err)
	}
}

func TestSidecar(t *testing.T) {
	s, err := parseConfig(datastore.Config{
		Endpoints: []string{"db.example:3307"}, Username: "admin", Password: "pw", CACert: testkit.NewCA(t).Cert,
		Parameters: map[string]string{"kineImage": "example/kine:1"},
	}, DefaultKineImage)
	if err != nil {
		t.Fatal(err)
	}
	k := s.sidecar(names{db: "a/b$c", user: "u$er@x"}, "0123abcd")
	want := []string{
		"--endpoint=mysql://u$$er@x:$(KINE_DB_PASSWORD)@tcp(db.example:3307)/a%2Fb$$c",
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

// waitNextSecond returns once the wall clock has entered a new second: timestamps with a
// one-second resolution then differ from the ones taken before.
func waitNextSecond(t *testing.T) {
	t.Helper()
	start := time.Now().Truncate(time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for time.Now().Truncate(time.Second).Equal(start) {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("the clock did not advance")
		}
	}
}
