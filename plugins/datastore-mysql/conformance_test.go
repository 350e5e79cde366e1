package datastoremysql_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/openhcp/kamaji/plugins/datastore-mysql/driver"
	"github.com/openhcp/kamaji/plugins/datastore-mysql/internal/mysqltest"
	"github.com/openhcp/kamaji/sdk/conformance"
	"github.com/openhcp/kamaji/sdk/conformance/kine"
)

// TestConformance runs the SDK's conformance kit against the plugin binary, built here, and the
// machine's MySQL/MariaDB server: the same path the core takes. The kit reaches tenant data
// with the credentials of the returned kine sidecar (through a real kine when $KAMAJI_KINE_BIN
// is set).
func TestConformance(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kamaji-datastore-mysql")
	build := exec.Command("go", "build", "-o", bin, "./cmd/kamaji-datastore-mysql")
	build.Env = append(os.Environ(), "GOFLAGS="+os.Getenv("GOFLAGS")+" -buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	conformance.RunDataStore(t, conformance.Config{
		PluginPath: bin,
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
