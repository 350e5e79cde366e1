package datastoremysql_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openhcp/kamaji/plugins/datastore-mysql/driver"
	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/conformance"
	"github.com/openhcp/kamaji/sdk/conformance/kine"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit/mysqltest"
)

// TestConformance runs the SDK's conformance kit against the plugin binary, built here, and the
// machine's MySQL/MariaDB server: the same path the core takes. The kit reaches tenant data
// with the credentials of the returned kine sidecar (through a real kine when $KAMAJI_KINE_BIN
// is set).
func TestConformance(t *testing.T) {
	conformance.RunDataStore(t, conformance.Config{
		PluginPath: buildPlugin(t),
		DataStore:  mysqltest.DataStore(t),
		Backend:    kine.Backend{Binary: kine.BinaryFromEnv()},
	})
}

// TestConformanceInProcess runs the same checks on the driver without the transport.
func TestConformanceInProcess(t *testing.T) {
	d := driver.New(driver.Options{})
	t.Cleanup(d.Close)
	conformance.RunDataStore(t, conformance.Config{
		Plugin:     d,
		DataStore:  mysqltest.DataStore(t),
		Backend:    kine.Backend{Binary: kine.BinaryFromEnv()},
		ExportKeys: 300,
	})
}

// TestConformanceTLS runs the checks against a server of the test's own that refuses
// connections without TLS: the sidecar's CA file must work.
func TestConformanceTLS(t *testing.T) {
	d := driver.New(driver.Options{})
	t.Cleanup(d.Close)
	conformance.RunDataStore(t, conformance.Config{
		Plugin:     d,
		DataStore:  mysqltest.StartTLS(t),
		Backend:    kine.Backend{Binary: kine.BinaryFromEnv()},
		ExportKeys: 300,
	})
}

func buildPlugin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kamaji-datastore-mysql")
	build := exec.Command("go", "build", "-o", bin, "./cmd/kamaji-datastore-mysql")
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
	ctx, cfg := t.Context(), mysqltest.DataStore(t)
	// A random uid and names: the registry is the server's, shared with other runs.
	uid := func() string {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}
	base := "t_wire_" + uid()[:8]
	owner := datastore.Tenant{Namespace: "ns", Name: "wire", Schema: base, Username: base, UID: uid()}
	if _, err := c.EnsureTenant(ctx, cfg, owner); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.DeleteTenant(context.Background(), cfg, owner) })
	for _, twin := range []datastore.Tenant{
		{Namespace: "ns", Name: "twin-schema", Schema: owner.Schema, Username: base + "_other", UID: uid()},
		{Namespace: "ns", Name: owner.Name, Schema: owner.Schema, Username: owner.Username, UID: uid()},
		{Namespace: "ns", Name: "twin-user", Schema: base + "_other", Username: owner.Username, UID: uid()},
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
		t.Errorf("ValidateTenant with the administrative user as username: %v, want INVALID_ARGUMENT naming tenant.username", err)
	}
}
