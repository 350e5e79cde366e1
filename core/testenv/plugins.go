package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/sdk"
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
