package datastorenats_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/openhcp/kamaji/plugins/datastore-nats/driver"
	"github.com/openhcp/kamaji/plugins/datastore-nats/internal/natstest"
	"github.com/openhcp/kamaji/sdk/conformance"
	"github.com/openhcp/kamaji/sdk/conformance/kine"
)

// TestConformance runs the SDK's conformance kit against the plugin binary, built here, in its
// default (jwt, multi-tenant) mode and a nats-server of the test's own in operator mode with
// JetStream: the same path the core takes. The kit reaches tenant data with the user JWT of the
// returned kine sidecar (through a real kine when $KAMAJI_KINE_BIN is set).
func TestConformance(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kamaji-datastore-nats")
	build := exec.Command("go", "build", "-o", bin, "./cmd/kamaji-datastore-nats")
	build.Env = append(os.Environ(), "GOFLAGS="+os.Getenv("GOFLAGS")+" -buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
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
