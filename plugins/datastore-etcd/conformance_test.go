package datastoreetcd_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/openhcp/kamaji/plugins/datastore-etcd/driver"
	"github.com/openhcp/kamaji/sdk/conformance"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// TestConformance runs the SDK's conformance kit against the plugin binary, built here, and a
// real multi-tenant etcd: the same path the core takes.
func TestConformance(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kamaji-datastore-etcd")
	build := exec.Command("go", "build", "-o", bin, "./cmd/kamaji-datastore-etcd")
	build.Env = append(os.Environ(), "GOFLAGS="+os.Getenv("GOFLAGS")+" -buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
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
