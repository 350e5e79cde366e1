package main

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Target is one image: a main package of one module, tagged with that module's VERSION.
type Target struct {
	Name       string   // image and binary name: kamaji, kamaji-<plugin>
	Dir        string   // module directory relative to the repository root (cmd, plugins/<plugin>), or absolute (--plugin)
	Package    string   // main package to build, relative to Dir
	Workspace  bool     // built inside go.work (the core) or with GOWORK=off (plugins, as they are released)
	Version    string   // content of Dir/VERSION
	VersionVar string   // -X symbol the version is stamped into
	Args       []string // default arguments after the entrypoint
	Module     string   // the go.mod module path of a --plugin module, named in the image history instead of its local Dir
}

// CoreName is the image and binary name of the core.
const CoreName = "kamaji"

// versionRE is a release version usable as an image tag (a tag allows no "+", so no build
// metadata).
var versionRE = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)

// Discover lists the core and every plugin under plugins/ that has a cmd/ directory, in name
// order after the core.
func Discover(root string) ([]Target, error) {
	coreVersion, err := readVersion(root, "cmd")
	if err != nil {
		return nil, err
	}
	// `kamaji manager` runs the controllers and webhooks; the other subcommands are tools.
	targets := []Target{{
		Name: CoreName, Dir: "cmd", Package: "./kamaji", Workspace: true,
		Version: coreVersion, VersionVar: "main.version", Args: []string{"manager"},
	}}
	entries, err := os.ReadDir(filepath.Join(root, "plugins"))
	if err != nil {
		return nil, err
	}
	var plugins []Target
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := path.Join("plugins", e.Name())
		if st, err := os.Stat(filepath.Join(root, dir, "cmd")); err != nil || !st.IsDir() {
			continue // a plugin without a command yet ships no image
		}
		version, err := readVersion(root, dir)
		if err != nil {
			return nil, err
		}
		symbol, err := findVersionVar(filepath.Join(root, dir))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dir, err)
		}
		plugins = append(plugins, Target{
			Name: "kamaji-" + e.Name(), Dir: dir, Package: "./cmd/...",
			Version: version, VersionVar: symbol,
		})
	}
	sort.Slice(plugins, func(i, j int) bool { return plugins[i].Name < plugins[j].Name })
	return append(targets, plugins...), nil
}

// DiscoverModule describes a plugin module outside plugins/, such as a third party's: its one
// command cmd/<binary> names the image and the binary, its VERSION tags the image, and it builds
// from its own go.mod (GOWORK=off), as the bundled plugins do.
func DiscoverModule(dir string) (Target, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Target{}, err
	}
	if _, err := os.Stat(filepath.Join(abs, "go.mod")); err != nil {
		return Target{}, fmt.Errorf("--plugin %s: %w (want the directory of the plugin's go.mod)", dir, err)
	}
	entries, err := os.ReadDir(filepath.Join(abs, "cmd"))
	if err != nil {
		return Target{}, fmt.Errorf("--plugin %s: %w (want the command in cmd/<binary>)", dir, err)
	}
	var cmds []string
	for _, e := range entries {
		if e.IsDir() {
			cmds = append(cmds, e.Name())
		}
	}
	if len(cmds) != 1 {
		return Target{}, fmt.Errorf("--plugin %s: cmd/ holds %d directories %q, want one, cmd/<binary>", dir, len(cmds), cmds)
	}
	name := cmds[0]
	if !imageNameRE.MatchString(name) {
		return Target{}, fmt.Errorf("--plugin %s: cmd/%s: the binary's name is the image's, lower-case letters, digits, '.', '_' and '-'", dir, name)
	}
	version, err := readVersion(abs, ".")
	if err != nil {
		return Target{}, fmt.Errorf("--plugin %s: %w", dir, err)
	}
	symbol, err := findVersionVar(abs)
	if err != nil {
		return Target{}, fmt.Errorf("--plugin %s: %w", dir, err)
	}
	module, err := modulePath(filepath.Join(abs, "go.mod"))
	if err != nil {
		return Target{}, err
	}
	return Target{Name: name, Dir: abs, Package: "./cmd/" + name, Version: version, VersionVar: symbol, Module: module}, nil
}

// imageNameRE is one path component of an image reference.
var imageNameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)

func readVersion(root, dir string) (string, error) {
	file := path.Join(dir, "VERSION")
	b, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		return "", fmt.Errorf("%s: %w (one line, the module's release such as 0.1.0)", file, err)
	}
	v := strings.TrimSpace(string(b))
	if !versionRE.MatchString(v) {
		return "", fmt.Errorf("%s: %q is not a release version such as 0.1.0 or 1.2.0-rc.1", file, v)
	}
	return v, nil
}

// findVersionVar finds the one package-level `var Version = "..."` of a plugin module (its
// GetPluginInfo reports it as VendorVersion) and returns the -X symbol that sets it.
func findVersionVar(modDir string) (string, error) {
	modPath, err := modulePath(filepath.Join(modDir, "go.mod"))
	if err != nil {
		return "", err
	}
	var found []string
	err = filepath.WalkDir(modDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if p != modDir && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); p != modDir && err == nil {
				return filepath.SkipDir // a nested module is not part of this binary's version
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		if !declaresVersion(f) {
			return nil
		}
		rel, err := filepath.Rel(modDir, filepath.Dir(p))
		if err != nil {
			return err
		}
		pkg := path.Join(modPath, filepath.ToSlash(rel))
		if f.Name.Name == "main" {
			pkg = "main" // the linker names a main package "main", whatever its path
		}
		found = append(found, pkg+".Version")
		return nil
	})
	if err != nil {
		return "", err
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("no package-level `var Version = \"...\"` to stamp the VERSION into (GetPluginInfo reports it)")
	default:
		return "", fmt.Errorf("several package-level Version variables (%s): keep one", strings.Join(found, ", "))
	}
}

// declaresVersion reports whether f has a package-level `var Version = "literal"`: the linker's
// -X sets only a string variable initialised by a constant.
func declaresVersion(f *ast.File) bool {
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if n.Name != "Version" || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					return true
				}
			}
		}
	}
	return false
}

func modulePath(goMod string) (string, error) {
	f, err := os.Open(goMod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) == 2 && fields[0] == "module" {
			if p, err := strconv.Unquote(fields[1]); err == nil {
				return p, nil
			}
			return fields[1], nil
		}
	}
	if err := s.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s: no module line", goMod)
}
