package datastorepostgres_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openhcp/kamaji/plugins/datastore-postgres/driver"
	"github.com/openhcp/kamaji/plugins/datastore-postgres/internal/pgtest"
	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/conformance"
	"github.com/openhcp/kamaji/sdk/conformance/kine"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// TestConformance runs the SDK's conformance kit against the plugin binary, built here, and the
// machine's PostgreSQL server: the same path the core takes. The kit reaches tenant data
// with the credentials of the returned kine sidecar (through a real kine when $KAMAJI_KINE_BIN
// is set).
func TestConformance(t *testing.T) {
	conformance.RunDataStore(t, conformance.Config{
		PluginPath: buildPlugin(t),
		DataStore:  pgtest.DataStore(t),
		Backend:    kine.Backend{Binary: kine.BinaryFromEnv()},
	})
}

// TestConformanceInProcess runs the same checks on the driver without the transport.
func TestConformanceInProcess(t *testing.T) {
	d := driver.New(driver.Options{})
	t.Cleanup(d.Close)
	conformance.RunDataStore(t, conformance.Config{
		Plugin:     d,
		DataStore:  pgtest.DataStore(t),
		Backend:    kine.Backend{Binary: kine.BinaryFromEnv()},
		ExportKeys: 300,
	})
}

// TestConformanceTLS runs the checks against a server of the test's own that only accepts TLS
// and SCRAM passwords: the sidecar's CA file must work, and isolation must hold by passwords,
// not only by CONNECT privileges.
func TestConformanceTLS(t *testing.T) {
	d := driver.New(driver.Options{})
	t.Cleanup(d.Close)
	conformance.RunDataStore(t, conformance.Config{
		Plugin:     d,
		DataStore:  pgtest.StartTLS(t),
		Backend:    kine.Backend{Binary: kine.BinaryFromEnv()},
		ExportKeys: 300,
	})
}

func buildPlugin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kamaji-datastore-postgres")
	build := exec.Command("go", "build", "-o", bin, "./cmd/kamaji-datastore-postgres")
	build.Env = append(os.Environ(), "GOFLAGS="+os.Getenv("GOFLAGS")+" -buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestOwnershipOverTheWire: through the plugin binary, as the core calls it, each twin of a
// tenant is refused with ALREADY_EXISTS (the host's *sdk.OwnedError) naming the owner, and
// ValidateTenant's refusals arrive as INVALID_ARGUMENT naming the field.
func TestOwnershipOverTheWire(t *testing.T) {
	bin := buildPlugin(t)
	sum, err := sdk.FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	c, err := datastore.NewClient(sdk.ClientConfig{Path: bin, SHA256: sum})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cfg := t.Context(), pgtest.DataStore(t)
	owner := datastore.Tenant{Namespace: "ns", Name: "wire", Schema: "t_wire", Username: "t_wire", UID: "6f0c7f44-0000-4000-8000-000000000001"}
	if _, err := c.EnsureTenant(ctx, cfg, owner); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.DeleteTenant(context.Background(), cfg, owner) })
	for _, twin := range []datastore.Tenant{
		{Namespace: "ns", Name: "twin-schema", Schema: owner.Schema, Username: "t_wire_other", UID: "6f0c7f44-0000-4000-8000-000000000002"},
		{Namespace: "ns", Name: owner.Name, Schema: owner.Schema, Username: owner.Username, UID: "6f0c7f44-0000-4000-8000-000000000003"},
		{Namespace: "ns", Name: "twin-user", Schema: "t_wire_other", Username: owner.Username, UID: "6f0c7f44-0000-4000-8000-000000000004"},
	} {
		_, err := c.EnsureTenant(ctx, cfg, twin)
		var oe *sdk.OwnedError
		if !errors.As(err, &oe) || !strings.Contains(oe.Message, owner.Owner().String()) {
			t.Errorf("twin %s/%s (schema %q, user %q): %v, want ALREADY_EXISTS naming %s", twin.Namespace, twin.Name, twin.Schema, twin.Username, err, owner.Owner())
		}
		if err := c.DeleteTenant(ctx, cfg, twin); err != nil {
			t.Errorf("DeleteTenant of the twin: %v", err)
		}
	}
	if _, err := c.EnsureTenant(ctx, cfg, owner); err != nil {
		t.Errorf("the owner after its twins: %v", err)
	}
	bad := owner
	bad.Username = cfg.Username
	var fe *sdk.FieldError
	if err := c.ValidateTenant(ctx, cfg, bad); !errors.As(err, &fe) || fe.Field != "tenant.username" {
		t.Errorf("ValidateTenant with the administrative role as username: %v, want INVALID_ARGUMENT naming tenant.username", err)
	}
}
