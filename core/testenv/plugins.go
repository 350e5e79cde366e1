package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// BuildPlugin builds plugins/<name> (a datastore or addon plugin module) with GOWORK=off, as
// it ships, into dir and returns its kamaji.yaml entry with the binary's sha256 pinned.
func BuildPlugin(dir, name string, kind settings.PluginKind, served ...string) (settings.Plugin, error) {
	root, err := RepoRoot()
	if err != nil {
		return settings.Plugin{}, err
	}
	bin := filepath.Join(dir, "kamaji-"+name)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/...")
	cmd.Dir = filepath.Join(root, "plugins", name)
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return settings.Plugin{}, fmt.Errorf("building plugin %s: %v\n%s", name, err, out)
	}
	return PluginEntry(bin, name, kind, served...)
}

// PluginEntry is the kamaji.yaml entry of a plugin binary, its sha256 pinned.
func PluginEntry(bin, name string, kind settings.PluginKind, served ...string) (settings.Plugin, error) {
	sum, err := sdk.FileSHA256(bin)
	if err != nil {
		return settings.Plugin{}, err
	}
	p := settings.Plugin{Kind: kind, Name: name, Path: bin, SHA256: sum}
	if kind == settings.KindDataStore {
		p.Drivers = served
	} else {
		p.Addons = served
	}
	return p, nil
}

// DataStorePlugin builds plugins/<module> and starts it as the host does (AutoMTLS, its sha256
// pinned); the plugin stops when the test ends.
func DataStorePlugin(t testing.TB, module, driver string) *datastore.Client {
	t.Helper()
	p, err := BuildPlugin(t.TempDir(), module, settings.KindDataStore, driver)
	if err != nil {
		t.Fatal(err)
	}
	c, err := datastore.NewClient(sdk.ClientConfig{Path: p.Path, SHA256: p.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
