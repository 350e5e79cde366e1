package datastorenats_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/openhcp/kamaji/plugins/datastore-nats/driver"
	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/conformance"
	"github.com/openhcp/kamaji/sdk/conformance/kine"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit/natstest"
)

var (
	buildOnce sync.Once
	binDir    string
	binErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// pluginBinary builds the plugin once for the tests that run it as the core does.
func pluginBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "kamaji-datastore-nats-test"); binErr != nil {
			return
		}
		build := exec.Command("go", "build", "-o", filepath.Join(binDir, "kamaji-datastore-nats"), "./cmd/kamaji-datastore-nats")
		build.Env = append(os.Environ(), "GOFLAGS="+os.Getenv("GOFLAGS")+" -buildvcs=false")
		if out, err := build.CombinedOutput(); err != nil {
			binErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, "kamaji-datastore-nats")
}

// TestConformance runs the SDK's conformance kit against the plugin binary, built here, in its
// default (jwt, multi-tenant) mode and a nats-server of the test's own in operator mode with
// JetStream: the same path the core takes. The kit reaches tenant data with the user JWT of the
// returned kine sidecar (through a real kine when $KAMAJI_KINE_BIN is set).
func TestConformance(t *testing.T) {
	bin := pluginBinary(t)
	srv := natstest.StartOperator(t, false)
	conformance.RunDataStore(t, conformance.Config{
		PluginPath: bin,
		DataStore:  srv.DataStore(),
		Backend:    kine.Backend{Binary: kine.BinaryFromEnv()},
	})
}

// TestConformanceInProcess runs the same checks on the driver without the transport, over TLS.
func TestConformanceInProcess(t *testing.T) {
	d := driver.New(driver.Options{})
	t.Cleanup(d.Close)
	srv := natstest.StartOperator(t, true)
	conformance.RunDataStore(t, conformance.Config{
		Plugin:     d,
		DataStore:  srv.DataStore(),
		Backend:    kine.Backend{Binary: kine.BinaryFromEnv()},
		ExportKeys: 300,
	})
}

// TestOwnershipOverTheWire: a twin's refusal reaches the core as ALREADY_EXISTS (the client's
// *sdk.OwnedError) naming the owner, and ValidateTenant's as INVALID_ARGUMENT naming the field.
func TestOwnershipOverTheWire(t *testing.T) {
	bin := pluginBinary(t)
	sum, err := sdk.FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	c, err := datastore.NewClient(sdk.ClientConfig{Path: bin, SHA256: sum})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	srv := natstest.StartOperator(t, false)
	cfg, ctx := srv.DataStore(), t.Context()

	admin := datastore.Tenant{Namespace: "ns", Name: "a", Schema: "ns_a", Username: srv.Account, UID: "uid-a"}
	var fe *sdk.FieldError
	if err := c.ValidateTenant(ctx, cfg, admin); !errors.As(err, &fe) || fe.Field != "tenant.username" {
		t.Fatalf("ValidateTenant with the DataStore's user: %v, want INVALID_ARGUMENT naming tenant.username", err)
	}

	owner := datastore.Tenant{Namespace: "ns", Name: "owner", Schema: "ns_owner", Username: "ns_owner", UID: "uid-owner"}
	if _, err := c.EnsureTenant(ctx, cfg, owner); err != nil {
		t.Fatal(err)
	}
	twin := owner
	twin.UID = "uid-twin"
	_, err = c.EnsureTenant(ctx, cfg, twin)
	var oe *sdk.OwnedError
	if !errors.As(err, &oe) || !strings.Contains(oe.Message, owner.Owner().String()) || !strings.Contains(oe.Message, "tenant.schema") {
		t.Fatalf("the twin's EnsureTenant: %v, want ALREADY_EXISTS naming tenant.schema and %s", err, owner.Owner())
	}
	if err := c.DeleteTenant(ctx, cfg, twin); err != nil {
		t.Fatal(err)
	}
	if _, err := c.EnsureTenant(ctx, cfg, owner); err != nil {
		t.Fatalf("the owner after its twin's DeleteTenant: %v", err)
	}
	if err := c.DeleteTenant(ctx, cfg, owner); err != nil {
		t.Fatal(err)
	}
}
