package datastoreetcd_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/openhcp/kamaji/plugins/datastore-etcd/driver"
	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/conformance"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/testkit"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// pluginBinary builds the plugin once for the tests of this package.
func pluginBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kamaji-datastore-etcd-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "kamaji-datastore-etcd")
		build := exec.Command("go", "build", "-o", binPath, "./cmd/kamaji-datastore-etcd")
		build.Env = append(os.Environ(), "GOFLAGS="+os.Getenv("GOFLAGS")+" -buildvcs=false")
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// TestConformance runs the SDK's conformance kit against the plugin binary, built here, and a
// real multi-tenant etcd: the same path the core takes.
func TestConformance(t *testing.T) {
	bin := pluginBinary(t)
	etcd := testkit.StartEtcd(t)
	conformance.RunDataStore(t, conformance.Config{PluginPath: bin, DataStore: etcd.Config()})
}

// TestConformanceInProcess runs the same checks on the driver without the transport.
func TestConformanceInProcess(t *testing.T) {
	etcd := testkit.StartEtcd(t)
	d := driver.New()
	t.Cleanup(d.Close)
	conformance.RunDataStore(t, conformance.Config{Plugin: d, DataStore: etcd.Config(), ExportKeys: 300})
}

// TestOwnershipOverTheWire checks what the host receives from the binary: a twin refused as an
// *sdk.OwnedError (ALREADY_EXISTS) naming the owner, a bad name as an *sdk.FieldError.
func TestOwnershipOverTheWire(t *testing.T) {
	bin := pluginBinary(t)
	etcd := testkit.StartEtcd(t)
	sum, err := sdk.FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	c, err := datastore.NewClient(sdk.ClientConfig{Path: bin, SHA256: sum})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cfg := t.Context(), etcd.Config()

	caps, err := c.Capabilities(ctx)
	if err != nil || !slices.Contains(caps, datastore.CapabilityValidateTenant) {
		t.Fatalf("capabilities %v, %v: want VALIDATE_TENANT", caps, err)
	}
	owner := datastore.Tenant{Namespace: "ns", Name: "a", UID: "uid-a", Schema: "t_a", Username: "u_a"}
	if _, err := c.EnsureTenant(ctx, cfg, owner); err != nil {
		t.Fatal(err)
	}
	twin := datastore.Tenant{Namespace: "ns", Name: "b", UID: "uid-b", Schema: "t_a", Username: "u_b"}
	_, err = c.EnsureTenant(ctx, cfg, twin)
	var oe *sdk.OwnedError
	if !errors.As(err, &oe) || !strings.Contains(oe.Message, "tenant.schema") || !strings.Contains(oe.Message, owner.Owner().String()) {
		t.Fatalf("EnsureTenant of a twin = %v, want an OwnedError on tenant.schema naming %s", err, owner.Owner())
	}
	bad := owner
	bad.Username = "root" // the DataStore's admin CN in the testkit
	var fe *sdk.FieldError
	if err := c.ValidateTenant(ctx, cfg, bad); !errors.As(err, &fe) || fe.Field != "tenant.username" {
		t.Fatalf("ValidateTenant(username root) = %v, want a FieldError on tenant.username", err)
	}
}
