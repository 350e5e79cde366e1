package conformance_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/conformance"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/internal/fake"
)

// fakeBackend opens sessions on the fake store as the tenant's user.
type fakeBackend struct{ store *fake.Store }

func (b fakeBackend) Open(_ context.Context, _ datastore.Config, _ datastore.Tenant, conn datastore.Connection) (conformance.Session, error) {
	return &session{store: b.store, user: conn.Etcd.ClientCertificate.CommonName, prefix: conn.Etcd.Prefix}, nil
}

func (b fakeBackend) Residue(_ context.Context, _ datastore.Config, _ datastore.Tenant, conn datastore.Connection) ([]string, error) {
	return b.store.Residue(conn.Etcd.ClientCertificate.CommonName, conn.Etcd.Prefix), nil
}

type session struct {
	store        *fake.Store
	user, prefix string
}

func (s *session) Prefix() string { return s.prefix }
func (s *session) Close() error   { return nil }

func (s *session) Put(_ context.Context, key string, v []byte) error {
	if err := s.store.Access(s.user, key); err != nil {
		return err
	}
	s.store.Put(key, v)
	return nil
}

func (s *session) Get(_ context.Context, key string) ([]byte, bool, error) {
	if err := s.store.Access(s.user, key); err != nil {
		return nil, false, err
	}
	v, ok := s.store.Get(key)
	return v, ok, nil
}

var dsConfig = datastore.Config{Name: "fake", Driver: "fake", Endpoints: []string{"fake:2379"}}

// The fake lacks USAGE and VALIDATE_TENANT: the kit must skip those checks, naming the
// capability, and verify that GetUsage and ValidateTenant answer UNIMPLEMENTED; everything else
// passes.
func TestVerifyInProcess(t *testing.T) {
	p := fake.NewDatastore()
	rep, err := conformance.Verify(t.Context(), conformance.Config{
		Plugin: p, DataStore: dsConfig, Backend: fakeBackend{p.Store}, ExportKeys: 25,
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
		want := conformance.Pass
		if c, ok := map[string]string{"usage": "USAGE", "validate-tenant": "VALIDATE_TENANT"}[r.Name]; ok {
			want = conformance.Skip
			if !strings.Contains(r.Reason, c) {
				t.Errorf("%s: skip reason %q does not name the capability %s", r.Name, r.Reason, c)
			}
		}
		if r.Status != want {
			t.Errorf("%s: %s (%s), want %s", r.Name, r.Status, r.Reason, want)
		}
	}
	if !rep.Passed() || !strings.Contains(out.String(), "14 passed, 0 failed, 2 skipped") {
		t.Errorf("summary wrong:\n%s", out.String())
	}
	if res := p.Store.Residue("", "/"); len(res) != 0 {
		t.Errorf("the kit left data behind: %v", res)
	}
}

// leaky lets every tenant read everything: the isolation check must catch it.
type leaky struct{ fakeBackend }

func (b leaky) Open(ctx context.Context, ds datastore.Config, t datastore.Tenant, conn datastore.Connection) (conformance.Session, error) {
	s, _ := b.fakeBackend.Open(ctx, ds, t, conn)
	return &leakySession{s.(*session)}, nil
}

type leakySession struct{ *session }

func (s *leakySession) Get(_ context.Context, key string) ([]byte, bool, error) {
	v, ok := s.store.Get(key)
	return v, ok, nil
}

func TestVerifyCatchesLeaks(t *testing.T) {
	p := fake.NewDatastore()
	rep, err := conformance.Verify(t.Context(), conformance.Config{
		Plugin: p, DataStore: dsConfig, Backend: leaky{fakeBackend{p.Store}}, ExportKeys: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Name == "isolation" && (r.Status != conformance.Fail || !strings.Contains(r.Reason, "read tenant ab's key")) {
			t.Errorf("isolation: %s %s", r.Status, r.Reason)
		}
	}
	if rep.Passed() {
		t.Error("a leaky datastore passed")
	}
}

// A configuration naming a driver the plugin does not serve fails identity, saying what to set,
// and only identity: the other checks go on with the capabilities the plugin announced.
func TestVerifyOtherDriverName(t *testing.T) {
	p := fake.NewDatastore()
	cfg := dsConfig
	cfg.Driver = "etcd"
	rep, err := conformance.Verify(t.Context(), conformance.Config{
		Plugin: p, DataStore: cfg, Backend: fakeBackend{p.Store}, ExportKeys: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		want := conformance.Pass
		switch r.Name {
		case "identity":
			want = conformance.Fail
			if !strings.Contains(r.Reason, `plugin serves drivers ["fake"], the configuration asks for driver "etcd"`) ||
				!strings.Contains(r.Reason, `Etcd.ConfigFor("fake")`) {
				t.Errorf("identity: %s", r.Reason)
			}
		case "usage", "validate-tenant":
			want = conformance.Skip
		case "optional-rpcs":
			want = conformance.Skip // it needs identity
		}
		if r.Status != want {
			t.Errorf("%s: %s (%s), want %s", r.Name, r.Status, r.Reason, want)
		}
	}
}

func TestVerifyNeedsAPlugin(t *testing.T) {
	if _, err := conformance.Verify(t.Context(), conformance.Config{DataStore: dsConfig}); err == nil {
		t.Error("Verify without a plugin did not fail")
	}
}

func TestRunDataStore(t *testing.T) {
	p := fake.NewDatastore()
	conformance.RunDataStore(t, conformance.Config{Plugin: p, DataStore: dsConfig, Backend: fakeBackend{p.Store}, ExportKeys: 5})
}

// statusErrors answers ownership refusals as gRPC statuses, as an in-process driver may: the kit
// takes ALREADY_EXISTS for an *sdk.OwnedError.
type statusErrors struct{ *fake.Datastore }

func (d statusErrors) EnsureTenant(ctx context.Context, cfg datastore.Config, t datastore.Tenant) (datastore.Connection, error) {
	conn, err := d.Datastore.EnsureTenant(ctx, cfg, t)
	var oe *sdk.OwnedError
	if errors.As(err, &oe) {
		return conn, status.Error(codes.AlreadyExists, oe.Error())
	}
	return conn, err
}

func TestVerifyInProcessStatusErrors(t *testing.T) {
	p := fake.NewDatastore()
	rep, err := conformance.Verify(t.Context(), conformance.Config{
		Plugin: statusErrors{p}, DataStore: dsConfig, Backend: fakeBackend{p.Store}, ExportKeys: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Name == "ownership" && r.Status != conformance.Pass {
			t.Errorf("ownership: %s %s", r.Status, r.Reason)
		}
	}
}

// lenient accepts any twin, as a plugin that records no owner does; it keeps the prefix of the
// first tenant given a user, so the twin's connection reaches the owner's data.
type lenient struct{ *fake.Datastore }

func (d lenient) EnsureTenant(ctx context.Context, cfg datastore.Config, t datastore.Tenant) (datastore.Connection, error) {
	t.UID = "everyone"
	return d.Datastore.EnsureTenant(ctx, cfg, t)
}

func (d lenient) DeleteTenant(ctx context.Context, cfg datastore.Config, t datastore.Tenant) error {
	t.UID = "everyone"
	return d.Datastore.DeleteTenant(ctx, cfg, t)
}

func TestVerifyCatchesMissingOwnership(t *testing.T) {
	p := fake.NewDatastore()
	rep, err := conformance.Verify(t.Context(), conformance.Config{
		Plugin: lenient{p}, DataStore: dsConfig, Backend: fakeBackend{p.Store}, ExportKeys: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		want := conformance.Pass
		switch r.Name {
		case "usage", "validate-tenant":
			want = conformance.Skip
		case "ownership":
			want = conformance.Fail
			if !strings.Contains(r.Reason, "succeeded; want ALREADY_EXISTS") || !strings.Contains(r.Reason, "the twin reads tenant o's key") {
				t.Errorf("ownership: %s", r.Reason)
			}
		}
		if r.Status != want {
			t.Errorf("%s: %s (%s), want %s", r.Name, r.Status, r.Reason, want)
		}
	}
}
