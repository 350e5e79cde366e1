package driver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/conformance/kine"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit/natstest"
)

// The checks every driver must pass live in the conformance kit (see ../conformance_test.go),
// in jwt mode; these cover what is specific to NATS, and basic mode.

func newDriver(t *testing.T, mode AuthMode) *Driver {
	d := New(Options{AuthMode: mode})
	t.Cleanup(d.Close)
	return d
}

func isField(err error, field string) bool {
	fe, ok := err.(*sdk.FieldError)
	return ok && fe.Field == field
}

// With plain credentials a DataStore serves one tenant: the plugin does not announce
// MULTI_TENANT, and a second tenant is refused with the first one's name.
func TestBasicModeServesOneTenant(t *testing.T) {
	d := newDriver(t, AuthBasic)
	ctx := t.Context()
	caps, _ := d.Capabilities(ctx)
	for _, c := range caps {
		if c == datastore.CapabilityMultiTenant {
			t.Fatal("basic mode announces MULTI_TENANT")
		}
	}
	cfg := natstest.StartPlain(t, "kamaji", "s3cr3t pass@word")
	if err := d.ValidateConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	first := datastore.Tenant{Namespace: "team-a", Name: "first", Schema: "team-a_first", Username: "team-a_first", UID: "uid-first"}
	second := datastore.Tenant{Namespace: "team-b", Name: "second", Schema: "team-b_second", Username: "team-b_second", UID: "uid-second"}
	conn, err := d.EnsureTenant(ctx, cfg, first)
	if err != nil {
		t.Fatal(err)
	}
	again, err := d.EnsureTenant(ctx, cfg, first)
	if err != nil || again.Kine.Args[0] != conn.Kine.Args[0] {
		t.Fatalf("EnsureTenant of the same tenant again: %v", err)
	}
	_, err = d.EnsureTenant(ctx, cfg, second)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "team-a/first") {
		t.Fatalf("second tenant: %v, want FailedPrecondition naming team-a/first", err)
	}
	if strings.Contains(err.Error(), cfg.Password) {
		t.Fatal("the error shows the password")
	}
	// A twin of the first (its bucket, another uid) passes the one-tenant rule: the owner
	// registry refuses it, and its DeleteTenant leaves the first tenant's bucket.
	twin := first
	twin.UID = "uid-twin"
	_, err = d.EnsureTenant(ctx, cfg, twin)
	wantOwned(t, err, "tenant.schema", first.Owner())
	if err := d.DeleteTenant(ctx, cfg, twin); err != nil {
		t.Fatal(err)
	}
	// The sidecar's context reaches the bucket with the DataStore's credentials.
	s, err := kine.Backend{}.Open(ctx, cfg, first, conn)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, s.Prefix()+"registry/x", []byte("v")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := d.DeleteTenant(ctx, cfg, first); err != nil {
		t.Fatal(err)
	}
	if _, err := d.EnsureTenant(ctx, cfg, second); err != nil {
		t.Fatalf("second tenant after the first one's deletion: %v", err)
	}
	if err := d.DeleteTenant(ctx, cfg, second); err != nil {
		t.Fatal(err)
	}
}

// The machine's NATS server (no authentication) is a basic-mode DataStore; jwt mode refuses it
// naming the password, and says how to serve it.
func TestMachineServer(t *testing.T) {
	cfg := natstest.Plain(t)
	ctx := t.Context()
	if err := newDriver(t, AuthBasic).ValidateConfig(ctx, cfg); err != nil {
		t.Fatalf("basic mode: %v", err)
	}
	err := newDriver(t, AuthJWT).ValidateConfig(ctx, cfg)
	if !isField(err, "password") || !strings.Contains(err.Error(), "--auth-mode=basic") {
		t.Fatalf("jwt mode: %v, want INVALID_ARGUMENT naming password and --auth-mode=basic", err)
	}
}

// Tenant credentials are the same on every call, restricted to the tenant's bucket and inbox,
// signed by the signing key on behalf of the account.
func TestTenantCredentials(t *testing.T) {
	acct, _ := nkeys.CreateAccount()
	apub, _ := acct.PublicKey()
	sk, _ := nkeys.CreateAccount()
	seed, _ := sk.Seed()
	cfg := datastore.Config{Endpoints: []string{"127.0.0.1:4222"}, Username: apub, Password: string(seed)}
	s, err := parseConfig(cfg, AuthJWT, DefaultKineImage)
	if err != nil {
		t.Fatal(err)
	}
	tn := datastore.Tenant{Namespace: "ns", Name: "a", Schema: "ns_a", Username: "ns_a"}
	b, _ := bucketName(tn)
	k1, err := s.sidecar(b, tn)
	if err != nil {
		t.Fatal(err)
	}
	waitNextSecond(t) // a time-stamped JWT would differ now
	k2, _ := s.sidecar(b, tn)
	var creds []byte
	for i := range k1.Files {
		if string(k1.Files[i].Content) != string(k2.Files[i].Content) {
			t.Fatalf("file %s differs between two calls", k1.Files[i].Path)
		}
		if strings.HasSuffix(k1.Files[i].Path, ".creds") {
			creds = k1.Files[i].Content
			if !k1.Files[i].Secret {
				t.Error("the credentials file is not Secret")
			}
		}
	}
	tok, err := jwt.ParseDecoratedJWT(creds)
	if err != nil {
		t.Fatal(err)
	}
	uc, err := jwt.DecodeUserClaims(tok)
	if err != nil {
		t.Fatal(err)
	}
	vr := jwt.ValidationResults{}
	uc.Validate(&vr)
	if vr.IsBlocking(true) {
		t.Fatalf("invalid claims: %v", vr.Errors())
	}
	if uc.IssuerAccount != apub || uc.Name != "ns_a" || uc.Expires != 0 {
		t.Errorf("issuer_account %q, name %q, expires %d", uc.IssuerAccount, uc.Name, uc.Expires)
	}
	if got := uc.Sub.Allow; len(got) != 1 || got[0] != "_INBOX_"+b+".>" {
		t.Errorf("sub allow %v", got)
	}
	for _, p := range uc.Pub.Allow {
		if !strings.Contains(p, b) && p != "$JS.API.INFO" {
			t.Errorf("publish permission %q outside bucket %s", p, b)
		}
		if strings.Contains(p, "DELETE."+"KV_") && !strings.Contains(p, "CONSUMER") || strings.Contains(p, "STREAM.UPDATE") || strings.Contains(p, "STREAM.PURGE") {
			t.Errorf("publish permission %q lets the tenant alter its stream", p)
		}
	}
}

func TestBucketNames(t *testing.T) {
	seen := map[string]string{}
	for _, schema := range []string{"ns_a", "ns-a", "ns.a", "ns a", "q'uo\"te`s", "日本語", "sl/ash", strings.Repeat("x", 300)} {
		b, err := bucketName(datastore.Tenant{Schema: schema, Username: "u"})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range b {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				t.Errorf("bucket %q of %q has %q", b, schema, r)
			}
		}
		if len(b) > 80 {
			t.Errorf("bucket %q too long", b)
		}
		if other, ok := seen[b]; ok {
			t.Errorf("schemas %q and %q share bucket %s", schema, other, b)
		}
		seen[b] = schema
	}
	a, _ := bucketName(datastore.Tenant{Schema: "s", Username: "one"})
	b, _ := bucketName(datastore.Tenant{Schema: "s", Username: "two"})
	if a == b {
		t.Error("another username gets the same bucket: a deleted tenant's credentials would reach it")
	}
}

// Hostile names end to end in jwt mode.
func TestHostileNames(t *testing.T) {
	srv := natstest.StartOperator(t, false)
	d, cfg := newDriver(t, AuthJWT), srv.DataStore()
	ctx := t.Context()
	for _, name := range []string{"q'uo\"te`s", "semi;colon; --", "tëst 日本語", "dollar$(HOME)$$x", "sl/ash?@:x(y)#frag*>"} {
		tn := datastore.Tenant{Namespace: "ns", Name: "hostile", Schema: name, Username: name, UID: "uid-" + name}
		conn, err := d.EnsureTenant(ctx, cfg, tn)
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		s, err := kine.Backend{}.Open(ctx, cfg, tn, conn)
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if err := s.Put(ctx, s.Prefix()+"registry/x", []byte("v")); err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		s.Close()
		if err := d.DeleteTenant(ctx, cfg, tn); err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if res, err := (kine.Backend{}).Residue(ctx, cfg, tn, conn); err != nil || len(res) > 0 {
			t.Fatalf("%q: residue %v %v", name, res, err)
		}
	}
}

func TestValidateConfigReportsTheCause(t *testing.T) {
	srv := natstest.StartOperator(t, false)
	d, cfg := newDriver(t, AuthJWT), srv.DataStore()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := d.ValidateConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	stranger, _ := nkeys.CreateAccount()
	seed, _ := stranger.Seed()
	wrong := cfg
	wrong.Password = string(seed)
	if err := d.ValidateConfig(ctx, wrong); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "password") {
		t.Errorf("key that is not the account's: %v, want PermissionDenied naming password", err)
	}
	down := cfg
	down.Endpoints = []string{"127.0.0.1:1"}
	if err := d.ValidateConfig(ctx, down); status.Code(err) != codes.Unavailable {
		t.Errorf("unreachable server: %v, want Unavailable", err)
	}
	for _, c := range []struct {
		field string
		edit  func(*datastore.Config)
	}{
		{"endpoints[0]", func(c *datastore.Config) { c.Endpoints = []string{"http://x:1"} }},
		{"username", func(c *datastore.Config) { c.Username = "not-an-account" }},
		{"password", func(c *datastore.Config) { c.Password = "plain" }},
		{"caCert", func(c *datastore.Config) { c.CACert = []byte("nope") }},
		{"parameters.replicas", func(c *datastore.Config) { c.Parameters = map[string]string{"replicas": "9"} }},
		{"parameters.bogus", func(c *datastore.Config) { c.Parameters = map[string]string{"bogus": "1"} }},
	} {
		bad := cfg
		c.edit(&bad)
		if err := d.ValidateConfig(ctx, bad); !isField(err, c.field) {
			t.Errorf("%s: %v, want INVALID_ARGUMENT naming it", c.field, err)
		}
	}
}

// The vectors are base58 (Bitcoin alphabet) of each segment, as kine's codec makes them.
func TestKineKeyCodec(t *testing.T) {
	for key, want := range map[string]string{
		"/registry/pods":   "L8nZchjdPLL.3sh2fL",
		"compact_rev_key":  "meta.3nMHGiDcNy8fooLXTBSrk",
		"/registry//pods":  "L8nZchjdPLL.p.3sh2fL",
		"/\x00a":           "12g",
		"kamaji.io/tenant": "",
	} {
		got, err := encodeKey(key)
		if err != nil || (want != "" && got != want) {
			t.Errorf("encodeKey(%q) = %q %v, want %q", key, got, err, want)
		}
		back, err := decodeKey(got)
		if err != nil || back != key {
			t.Errorf("decodeKey(%q) = %q %v, want %q", got, back, err, key)
		}
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
