package datastorepostgres_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/openhcp/kamaji/plugins/datastore-postgres/driver"
	"github.com/openhcp/kamaji/plugins/datastore-postgres/internal/pgtest"
	"github.com/openhcp/kamaji/sdk/conformance"
	"github.com/openhcp/kamaji/sdk/conformance/kine"
)

// TestConformance runs the SDK's conformance kit against the plugin binary, built here, and the
// machine's PostgreSQL server: the same path the core takes. The kit reaches tenant data
// with the credentials of the returned kine sidecar (through a real kine when $KAMAJI_KINE_BIN
// is set).
func TestConformance(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kamaji-datastore-postgres")
	build := exec.Command("go", "build", "-o", bin, "./cmd/kamaji-datastore-postgres")
	build.Env = append(os.Environ(), "GOFLAGS="+os.Getenv("GOFLAGS")+" -buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	conformance.RunDataStore(t, conformance.Config{
		PluginPath: bin,
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
