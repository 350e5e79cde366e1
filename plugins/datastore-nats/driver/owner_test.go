package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/conformance/kine"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit/natstest"
)

// wantOwned checks that err is the ALREADY_EXISTS refusal of field naming owner.
func wantOwned(t *testing.T, err error, field string, owner datastore.Owner) {
	t.Helper()
	var oe *sdk.OwnedError
	if !errors.As(err, &oe) {
		t.Fatalf("got %v, want ALREADY_EXISTS (sdk.OwnedError) on %s", err, field)
	}
	if oe.Field != field || !strings.Contains(oe.Message, owner.String()) {
		t.Fatalf("got %q on %q, want %s naming %s", oe.Message, oe.Field, field, owner)
	}
}

// wantOwnedOneOf is wantOwned where any of fields may be the one refused.
func wantOwnedOneOf(t *testing.T, err error, owner datastore.Owner, fields ...string) {
	t.Helper()
	var oe *sdk.OwnedError
	if !errors.As(err, &oe) {
		t.Fatalf("got %v, want ALREADY_EXISTS (sdk.OwnedError) on one of %v", err, fields)
	}
	if !slices.Contains(fields, oe.Field) || !strings.Contains(oe.Message, owner.String()) {
		t.Fatalf("got %q on %q, want one of %v naming %s", oe.Message, oe.Field, fields, owner)
	}
}

// adminJS is the driver's own connection to cfg.
func adminJS(t *testing.T, d *Driver, cfg datastore.Config) (*settings, jetstream.JetStream) {
	t.Helper()
	s, err := d.settings(cfg)
	if err != nil {
		t.Fatal(err)
	}
	js, err := d.admin(s)
	if err != nil {
		t.Fatal(err)
	}
	return s, js
}

func bucketOf(t *testing.T, tn datastore.Tenant) string {
	t.Helper()
	b, err := bucketName(tn)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bucketExists(t *testing.T, js jetstream.JetStream, bucket string) bool {
	t.Helper()
	_, err := js.Stream(t.Context(), "KV_"+bucket)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// registryRev is the revision of key's record, 0 when the registry holds no message at all for
// it (not even a delete marker).
func registryRev(t *testing.T, js jetstream.JetStream, key string) uint64 {
	t.Helper()
	st, err := js.Stream(t.Context(), "KV_"+registryBucket)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(t.Context(), "$KV."+registryBucket+"."+key)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return m.Sequence
}

// noResidue fails when tn's bucket or any message of its registry keys remains.
func noResidue(t *testing.T, js jetstream.JetStream, tn datastore.Tenant) {
	t.Helper()
	if b := bucketOf(t, tn); bucketExists(t, js, b) {
		t.Errorf("bucket %s remains", b)
	}
	for _, k := range []string{schemaKey(tn.Schema), userKey(tn.Username)} {
		if rev := registryRev(t, js, k); rev != 0 {
			t.Errorf("registry key %s remains (revision %d)", k, rev)
		}
	}
}

func writeRecord(t *testing.T, js jetstream.JetStream, s *settings, key string, rec ownerRecord) {
	t.Helper()
	reg, err := openRegistry(t.Context(), js, s, true)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rec)
	if _, err := reg.kv.Create(t.Context(), key, b); err != nil {
		t.Fatal(err)
	}
}

func TestValidateTenant(t *testing.T) {
	acct, _ := nkeys.CreateAccount()
	apub, _ := acct.PublicKey()
	sk, _ := nkeys.CreateAccount()
	skpub, _ := sk.PublicKey()
	seed, _ := sk.Seed()
	// Nothing listens on port 1: ValidateTenant must not need the server.
	jwtCfg := datastore.Config{Endpoints: []string{"127.0.0.1:1"}, Username: apub, Password: string(seed)}
	basicCfg := datastore.Config{Endpoints: []string{"127.0.0.1:1"}, Username: "kamaji", Password: "secret"}
	ok := datastore.Tenant{Namespace: "ns", Name: "a", Schema: "ns_a", Username: "ns_a", UID: "uid-a"}
	for _, mode := range []AuthMode{AuthJWT, AuthBasic} {
		caps, _ := newDriver(t, mode).Capabilities(t.Context())
		if !reflect.DeepEqual(caps[len(caps)-1], datastore.CapabilityValidateTenant) {
			t.Errorf("%s mode: capabilities %v lack VALIDATE_TENANT", mode, caps)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	for _, c := range []struct {
		name  string
		mode  AuthMode
		cfg   datastore.Config
		edit  func(*datastore.Tenant)
		field string
	}{
		{"valid jwt", AuthJWT, jwtCfg, func(*datastore.Tenant) {}, ""},
		{"valid basic", AuthBasic, basicCfg, func(*datastore.Tenant) {}, ""},
		{"the registry's name as schema", AuthJWT, jwtCfg, func(t *datastore.Tenant) { t.Schema = registryBucket }, ""},
		{"empty schema", AuthJWT, jwtCfg, func(t *datastore.Tenant) { t.Schema = "" }, "tenant.schema"},
		{"NUL in schema", AuthJWT, jwtCfg, func(t *datastore.Tenant) { t.Schema = "a\x00b" }, "tenant.schema"},
		{"empty username", AuthJWT, jwtCfg, func(t *datastore.Tenant) { t.Username = "" }, "tenant.username"},
		{"the account as username", AuthJWT, jwtCfg, func(t *datastore.Tenant) { t.Username = apub }, "tenant.username"},
		{"the signing key as username", AuthJWT, jwtCfg, func(t *datastore.Tenant) { t.Username = skpub }, "tenant.username"},
		{"the plugin's own user as username", AuthJWT, jwtCfg, func(t *datastore.Tenant) { t.Username = Name }, "tenant.username"},
		{"the DataStore's user as username", AuthBasic, basicCfg, func(t *datastore.Tenant) { t.Username = "kamaji" }, "tenant.username"},
	} {
		tn := ok
		c.edit(&tn)
		err := newDriver(t, c.mode).ValidateTenant(ctx, c.cfg, tn)
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.field != "" && !isField(err, c.field):
			t.Errorf("%s: %v, want INVALID_ARGUMENT naming %s", c.name, err, c.field)
		}
	}
	// No schema reaches the registry's bucket, or any name outside the tenants' prefix.
	for _, schema := range []string{registryBucket, "owners", "-owners", "_owners", "kamaji-owners_", "KV_kamaji-owners", "kamaji-owners.>", "*"} {
		b := bucketOf(t, datastore.Tenant{Schema: schema, Username: "u"})
		if b == registryBucket || !strings.HasPrefix(b, bucketPrefix) {
			t.Errorf("schema %q gets bucket %q", schema, b)
		}
	}
}

// EnsureTenant and DeleteTenant apply ValidateTenant's checks before touching the server.
func TestEnsureAndDeleteValidateTheTenant(t *testing.T) {
	srv := natstest.StartOperator(t, false)
	d, cfg := newDriver(t, AuthJWT), srv.DataStore()
	ctx := t.Context()
	tn := datastore.Tenant{Namespace: "ns", Name: "a", Schema: "ns_a", Username: srv.Account, UID: "uid-a"}
	if _, err := d.EnsureTenant(ctx, cfg, tn); !isField(err, "tenant.username") {
		t.Fatalf("EnsureTenant: %v, want INVALID_ARGUMENT naming tenant.username", err)
	}
	if err := d.DeleteTenant(ctx, cfg, tn); !isField(err, "tenant.username") {
		t.Fatalf("DeleteTenant: %v, want INVALID_ARGUMENT naming tenant.username", err)
	}
	_, js := adminJS(t, d, cfg)
	noResidue(t, js, tn)
}

// Three twins of a tenant (another TenantControlPlane with its schema, or its schema and
// username, or its username) are refused naming the tenant, change nothing, and their
// DeleteTenant leaves the tenant's bucket, keys and user as they were.
func TestTwinsAreRefused(t *testing.T) {
	srv := natstest.StartOperator(t, false)
	d, cfg := newDriver(t, AuthJWT), srv.DataStore()
	ctx := t.Context()
	_, js := adminJS(t, d, cfg)
	victim := datastore.Tenant{Namespace: "team-a", Name: "victim", Schema: "shared", Username: "shared", UID: "uid-victim"}
	conn, err := d.EnsureTenant(ctx, cfg, victim)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := kine.Backend{}.Open(ctx, cfg, victim, conn)
	if err != nil {
		t.Fatal(err)
	}
	key := sess.Prefix() + "registry/secrets/team-a/token"
	if err := sess.Put(ctx, key, []byte("victim-data")); err != nil {
		t.Fatal(err)
	}
	sess.Close()
	vSchemaRev, vUserRev := registryRev(t, js, schemaKey(victim.Schema)), registryRev(t, js, userKey(victim.Username))
	if vSchemaRev == 0 || vUserRev == 0 {
		t.Fatal("the victim's owner records are missing")
	}

	for _, c := range []struct {
		name  string
		twin  datastore.Tenant
		field string
	}{
		{"same schema, another username", datastore.Tenant{Namespace: "team-b", Name: "twin", Schema: "shared", Username: "other", UID: "uid-twin-1"}, "tenant.schema"},
		{"same schema and username, another uid", datastore.Tenant{Namespace: "team-a", Name: "victim", Schema: "shared", Username: "shared", UID: "uid-twin-2"}, "tenant.schema"},
		{"another schema, same username", datastore.Tenant{Namespace: "team-b", Name: "twin", Schema: "elsewhere", Username: "shared", UID: "uid-twin-3"}, "tenant.username"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := d.EnsureTenant(ctx, cfg, c.twin)
			wantOwned(t, err, c.field, victim.Owner())
			if b := bucketOf(t, c.twin); b != bucketOf(t, victim) && bucketExists(t, js, b) {
				t.Errorf("the refused twin got bucket %s", b)
			}
			for _, k := range []string{schemaKey(c.twin.Schema), userKey(c.twin.Username)} {
				if k != schemaKey(victim.Schema) && k != userKey(victim.Username) && registryRev(t, js, k) != 0 {
					t.Errorf("the refused twin left registry key %s", k)
				}
			}
			if err := d.DeleteTenant(ctx, cfg, c.twin); err != nil {
				t.Fatalf("the twin's DeleteTenant: %v", err)
			}
		})
	}

	// The same owner cannot pair its schema with another username: its bucket would be lost.
	moved := victim
	moved.Username = "renamed"
	if _, err := d.EnsureTenant(ctx, cfg, moved); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("the owner with another username: %v, want FAILED_PRECONDITION", err)
	}
	if bucketExists(t, js, bucketOf(t, moved)) || registryRev(t, js, userKey(moved.Username)) != 0 {
		t.Error("the refused call created something")
	}

	// The victim is untouched: records at their revisions, bucket, data through its own user,
	// and the same connection as before.
	if registryRev(t, js, schemaKey(victim.Schema)) != vSchemaRev || registryRev(t, js, userKey(victim.Username)) != vUserRev {
		t.Error("the victim's owner records changed")
	}
	sess, err = kine.Backend{}.Open(ctx, cfg, victim, conn)
	if err != nil {
		t.Fatalf("the victim's user: %v", err)
	}
	v, found, err := sess.Get(ctx, key)
	sess.Close()
	if err != nil || !found || string(v) != "victim-data" {
		t.Fatalf("the victim's key after the twins: %q %v %v", v, found, err)
	}
	again, err := d.EnsureTenant(ctx, cfg, victim)
	if err != nil || !reflect.DeepEqual(again, conn) {
		t.Fatalf("the victim's EnsureTenant again: %v (same connection: %v)", err, reflect.DeepEqual(again, conn))
	}
	if err := d.DeleteTenant(ctx, cfg, victim); err != nil {
		t.Fatal(err)
	}
	noResidue(t, js, victim)
	// Its names are free again.
	if _, err := d.EnsureTenant(ctx, cfg, datastore.Tenant{Namespace: "team-b", Name: "next", Schema: "shared", Username: "shared", UID: "uid-next"}); err != nil {
		t.Fatalf("the names after the victim's deletion: %v", err)
	}
}

// A tenant made in part (by a failed EnsureTenant, or by hand) is deleted with nothing left.
func TestDeleteHalfProvisioned(t *testing.T) {
	srv := natstest.StartOperator(t, false)
	d, cfg := newDriver(t, AuthJWT), srv.DataStore()
	ctx := t.Context()
	s, js := adminJS(t, d, cfg)
	for i, c := range []struct {
		name                 string
		schema, user, bucket bool
		markerNamesTheTenant bool
	}{
		{name: "schema record only", schema: true},
		{name: "both records, no bucket", schema: true, user: true},
		{name: "schema record and bucket", schema: true, bucket: true},
		{name: "bucket only, no marker", bucket: true},
		{name: "bucket only, its marker", bucket: true, markerNamesTheTenant: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			tn := datastore.Tenant{Namespace: "ns", Name: fmt.Sprintf("half-%d", i), Schema: fmt.Sprintf("half_%d", i), Username: fmt.Sprintf("half_%d", i), UID: fmt.Sprintf("uid-half-%d", i)}
			if c.schema {
				writeRecord(t, js, s, schemaKey(tn.Schema), recordOf(tn))
			}
			if c.user {
				writeRecord(t, js, s, userKey(tn.Username), recordOf(tn))
			}
			if c.bucket {
				kv, err := js.CreateKeyValue(ctx, s.kvConfig(bucketOf(t, tn)))
				if err != nil {
					t.Fatal(err)
				}
				if err := putKine(ctx, kv, "/registry/x", []byte("v")); err != nil {
					t.Fatal(err)
				}
				if c.markerNamesTheTenant {
					b, _ := json.Marshal(marker{Namespace: tn.Namespace, Name: tn.Name, Schema: tn.Schema, Username: tn.Username})
					if err := putKine(ctx, kv, markerKey, b); err != nil {
						t.Fatal(err)
					}
				}
			}
			for range 2 {
				if err := d.DeleteTenant(ctx, cfg, tn); err != nil {
					t.Fatal(err)
				}
				noResidue(t, js, tn)
			}
		})
	}
}

// tenantNATS connects with the credentials of conn's sidecar, as kine does; violations lists
// the permission violations the server reported.
func tenantNATS(t *testing.T, url string, conn datastore.Connection, bucket string) (*nats.Conn, func() []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tenant.creds")
	for _, f := range conn.Kine.Files {
		if strings.HasSuffix(f.Path, "/tenant.creds") {
			if err := os.WriteFile(path, f.Content, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	var mu sync.Mutex
	var violations []string
	nc, err := nats.Connect(url, nats.UserCredentials(path), nats.CustomInboxPrefix(inboxPrefix(bucket)), nats.NoReconnect(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			mu.Lock()
			violations = append(violations, err.Error())
			mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), violations...)
	}
}

// A tenant's user can neither read, write, watch, copy nor remove the owner registry.
func TestRegistryUnreachableToTenants(t *testing.T) {
	srv := natstest.StartOperator(t, false)
	d, cfg := newDriver(t, AuthJWT), srv.DataStore()
	ctx := t.Context()
	_, js := adminJS(t, d, cfg)
	victim := datastore.Tenant{Namespace: "ns", Name: "victim", Schema: "victim", Username: "victim", UID: "uid-victim"}
	if _, err := d.EnsureTenant(ctx, cfg, victim); err != nil {
		t.Fatal(err)
	}
	tenant := datastore.Tenant{Namespace: "ns", Name: "curious", Schema: "curious", Username: "curious", UID: "uid-curious"}
	conn, err := d.EnsureTenant(ctx, cfg, tenant)
	if err != nil {
		t.Fatal(err)
	}
	bucket := bucketOf(t, tenant)
	nc, violations := tenantNATS(t, srv.URL, conn, bucket)
	tjs, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// Its own bucket works, so refusals below are the registry's.
	if _, err := tjs.KeyValue(ctx, bucket); err != nil {
		t.Fatalf("the tenant's own bucket: %v", err)
	}
	before := map[string]uint64{}
	for _, k := range []string{schemaKey(victim.Schema), userKey(victim.Username), schemaKey(tenant.Schema), userKey(tenant.Username)} {
		before[k] = registryRev(t, js, k)
	}
	stream, vkey := "KV_"+registryBucket, schemaKey(victim.Schema)
	forged, _ := json.Marshal(ownerRecord{Owner: tenant.Owner(), Schema: victim.Schema, Username: tenant.Username})
	sub, err := nc.SubscribeSync("$KV." + registryBucket + ".>")
	if err != nil {
		t.Fatal(err)
	}
	attempts := map[string]func(context.Context) error{
		"open the bucket": func(ctx context.Context) error { _, err := tjs.KeyValue(ctx, registryBucket); return err },
		"direct get": func(ctx context.Context) error {
			_, err := nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+stream+".$KV."+registryBucket+"."+vkey, nil)
			return err
		},
		"message get": func(ctx context.Context) error {
			_, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, []byte(`{"last_by_subj":"$KV.`+registryBucket+`.`+vkey+`"}`))
			return err
		},
		"consumer": func(ctx context.Context) error {
			_, err := tjs.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
			return err
		},
		"list streams": func(ctx context.Context) error {
			names := tjs.StreamNames(ctx)
			for range names.Name() {
			}
			return names.Err()
		},
		"purge": func(ctx context.Context) error {
			_, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.PURGE."+stream, nil)
			return err
		},
		"delete": func(ctx context.Context) error { return tjs.DeleteKeyValue(ctx, registryBucket) },
		"update": func(ctx context.Context) error {
			_, err := tjs.UpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: registryBucket, History: 5})
			return err
		},
		"mirror it as its own bucket": func(ctx context.Context) error {
			_, err := tjs.CreateStream(ctx, jetstream.StreamConfig{Name: "KV_" + bucket, Mirror: &jetstream.StreamSource{Name: stream}})
			return err
		},
		"mirror it as another stream": func(ctx context.Context) error {
			_, err := tjs.CreateStream(ctx, jetstream.StreamConfig{Name: "copy", Mirror: &jetstream.StreamSource{Name: stream}})
			return err
		},
		"publish a forged record": func(ctx context.Context) error {
			_, err := tjs.Publish(ctx, "$KV."+registryBucket+"."+vkey, forged)
			return err
		},
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for name, try := range attempts {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if err := try(ctx); err == nil {
				mu.Lock()
				t.Errorf("%s: the tenant's user succeeded", name)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// A plain publish is not answered: check that nothing landed.
	if err := nc.Publish("$KV."+registryBucket+"."+vkey, forged); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	// A record written now is not delivered to the tenant's subscription.
	other := datastore.Tenant{Namespace: "ns", Name: "later", Schema: "later", Username: "later", UID: "uid-later"}
	if _, err := d.EnsureTenant(ctx, cfg, other); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(time.Second); err == nil {
		t.Errorf("the tenant received registry message %s", m.Subject)
	}
	for k, rev := range before {
		if got := registryRev(t, js, k); got != rev {
			t.Errorf("registry key %s: revision %d, was %d", k, got, rev)
		}
	}
	if info, err := js.Stream(ctx, stream); err != nil || info.CachedInfo().Config.Mirror != nil || info.CachedInfo().Config.MaxMsgsPerSubject != 1 {
		t.Errorf("the registry changed: %v", err)
	}
	if !bucketExists(t, js, bucket) {
		t.Error("the tenant's bucket went away")
	}
	if len(violations()) == 0 {
		t.Error("the server reported no permissions violation")
	}
	t.Logf("violations: %d", len(violations()))
}

// Of several TenantControlPlanes racing for one schema, or for one username, exactly one gets
// it, and the others are refused naming it, leaving nothing behind.
func TestConcurrentEnsureOneWins(t *testing.T) {
	srv := natstest.StartOperator(t, false)
	d, cfg := newDriver(t, AuthJWT), srv.DataStore()
	ctx := t.Context()
	_, js := adminJS(t, d, cfg)
	const contenders = 4
	for round := range 6 {
		// Even rounds race for a schema (half the contenders share the username too), odd
		// rounds for a username with distinct schemas: the losers have claimed their schema by
		// then, and must give it back.
		shared := fmt.Sprintf("race_%d", round)
		field := "tenant.schema"
		if round%2 == 1 {
			field = "tenant.username"
		}
		tenants := make([]datastore.Tenant, contenders)
		errs := make([]error, contenders)
		for i := range tenants {
			schema, user := shared, shared
			switch {
			case round%2 == 1:
				schema = fmt.Sprintf("%s_%d", shared, i)
			case i%2 == 1:
				user = fmt.Sprintf("%s_%d", shared, i)
			}
			tenants[i] = datastore.Tenant{Namespace: "ns", Name: fmt.Sprintf("tcp-%d-%d", round, i), Schema: schema, Username: user, UID: fmt.Sprintf("uid-%d-%d", round, i)}
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range tenants {
			wg.Go(func() {
				<-start
				_, errs[i] = d.EnsureTenant(ctx, cfg, tenants[i])
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			if err == nil {
				if winner >= 0 {
					t.Fatalf("round %d: %s and %s both won", round, tenants[winner].Owner(), tenants[i].Owner())
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody won: %v", round, errs)
		}
		w := tenants[winner]
		for i, err := range errs {
			if i == winner {
				continue
			}
			l := tenants[i]
			if l.Schema == w.Schema && l.Username == w.Username {
				// A twin of the winner reads both records before it takes either: the winner's
				// claims may land between its two reads, so either field may refuse it.
				wantOwnedOneOf(t, err, w.Owner(), "tenant.schema", "tenant.username")
			} else {
				wantOwned(t, err, field, w.Owner())
			}
			if bucketOf(t, l) != bucketOf(t, w) && bucketExists(t, js, bucketOf(t, l)) {
				t.Errorf("round %d: loser %s left its bucket", round, l.Owner())
			}
			if l.Schema != w.Schema && registryRev(t, js, schemaKey(l.Schema)) != 0 || l.Username != w.Username && registryRev(t, js, userKey(l.Username)) != 0 {
				t.Errorf("round %d: loser %s left a registry record", round, l.Owner())
			}
			if err := d.DeleteTenant(ctx, cfg, l); err != nil {
				t.Fatal(err)
			}
		}
		if !bucketExists(t, js, bucketOf(t, w)) {
			t.Fatalf("round %d: the winner's bucket went away with the losers' DeleteTenant", round)
		}
		if err := d.DeleteTenant(ctx, cfg, w); err != nil {
			t.Fatal(err)
		}
		noResidue(t, js, w)
	}
}

// A bucket of an earlier release (no owner record) is adopted by the tenant its marker names,
// data included, and refused to any other; once adopted, it is recorded like any other.
func TestLegacyAdoption(t *testing.T) {
	srv := natstest.StartOperator(t, false)
	d, cfg := newDriver(t, AuthJWT), srv.DataStore()
	ctx := t.Context()
	s, js := adminJS(t, d, cfg)
	legacy := datastore.Tenant{Namespace: "old", Name: "tcp", Schema: "old_tcp", Username: "old_tcp", UID: "uid-old"}
	bucket := bucketOf(t, legacy)
	// What the earlier release made: the bucket, its marker without uid, the tenant's data.
	kv, err := js.CreateKeyValue(ctx, s.kvConfig(bucket))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := json.Marshal(map[string]string{"namespace": "old", "name": "tcp", "schema": legacy.Schema, "username": legacy.Username})
	if err := putKine(ctx, kv, markerKey, m); err != nil {
		t.Fatal(err)
	}
	if err := putKine(ctx, kv, "/registry/legacy", []byte("kept")); err != nil {
		t.Fatal(err)
	}

	// Another TenantControlPlane with the same names is neither given nor lets it be deleted.
	stranger := legacy
	stranger.Namespace, stranger.Name, stranger.UID = "other", "tcp", "uid-stranger"
	_, err = d.EnsureTenant(ctx, cfg, stranger)
	var oe *sdk.OwnedError
	if !errors.As(err, &oe) || oe.Field != "tenant.schema" || !strings.Contains(oe.Message, "old/tcp") {
		t.Fatalf("a stranger on a legacy bucket: %v, want ALREADY_EXISTS naming old/tcp", err)
	}
	if err := d.DeleteTenant(ctx, cfg, stranger); err != nil {
		t.Fatal(err)
	}
	if !bucketExists(t, js, bucket) || registryRev(t, js, schemaKey(legacy.Schema)) != 0 || registryRev(t, js, userKey(legacy.Username)) != 0 {
		t.Fatal("the stranger changed the legacy tenant")
	}

	// The tenant its marker names adopts it, with its data.
	conn, err := d.EnsureTenant(ctx, cfg, legacy)
	if err != nil {
		t.Fatalf("adoption: %v", err)
	}
	sess, err := kine.Backend{}.Open(ctx, cfg, legacy, conn)
	if err != nil {
		t.Fatal(err)
	}
	v, found, err := sess.Get(ctx, sess.Prefix()+"registry/legacy")
	sess.Close()
	if err != nil || !found || string(v) != "kept" {
		t.Fatalf("the adopted data: %q %v %v", v, found, err)
	}
	if mk, ok := readMarker(ctx, kv); !ok || mk.UID != legacy.UID {
		t.Errorf("marker after adoption: %+v", mk)
	}
	if registryRev(t, js, schemaKey(legacy.Schema)) == 0 || registryRev(t, js, userKey(legacy.Username)) == 0 {
		t.Fatal("the adoption is not recorded")
	}
	// From now on the registry decides: a twin of the same name and another uid is refused.
	recreated := legacy
	recreated.UID = "uid-recreated"
	_, err = d.EnsureTenant(ctx, cfg, recreated)
	wantOwned(t, err, "tenant.schema", legacy.Owner())
	if err := d.DeleteTenant(ctx, cfg, legacy); err != nil {
		t.Fatal(err)
	}
	noResidue(t, js, legacy)
}
