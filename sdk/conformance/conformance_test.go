package conformance_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

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

// The fake lacks USAGE: the kit must skip that check, naming the capability, and verify that
// GetUsage answers UNIMPLEMENTED; everything else passes.
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
		if r.Name == "usage" {
			want = conformance.Skip
			if !strings.Contains(r.Reason, "USAGE") {
				t.Errorf("skip reason %q does not name the capability", r.Reason)
			}
		}
		if r.Status != want {
			t.Errorf("%s: %s (%s), want %s", r.Name, r.Status, r.Reason, want)
		}
	}
	if !rep.Passed() || !strings.Contains(out.String(), "12 passed, 0 failed, 1 skipped") {
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
		if r.Name == "isolation" && (r.Status != conformance.Fail || !strings.Contains(r.Reason, "read tenant B's key")) {
			t.Errorf("isolation: %s %s", r.Status, r.Reason)
		}
	}
	if rep.Passed() {
		t.Error("a leaky datastore passed")
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
