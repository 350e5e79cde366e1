package plugin_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/openhcp/kamaji/sdk/conformance"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// TestConformance builds the plugin, starts a real etcd set up like a production multi-tenant
// DataStore, and runs every conformance check against the binary, started as the core starts it.
func TestConformance(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kamaji-datastore-example")
	build := exec.Command("go", "build", "-o", bin, "./cmd/kamaji-datastore-example")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	etcd := testkit.StartEtcd(t) // TLS, client certificates, auth enabled, admin user "root"
	conformance.RunDataStore(t, conformance.Config{
		PluginPath: bin,
		// Config() would name the driver "etcd"; the DataStore names the driver this plugin serves.
		DataStore: etcd.ConfigFor("example-etcd"),
	})
}
