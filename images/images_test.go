package main

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/addon"
	"github.com/openhcp/kamaji/sdk/datastore"
)

const repoRoot = ".."

// The plugin the build test builds besides the core: an addon, started through the SDK's client
// to read the version it reports.
const testPlugin = "kamaji-addon-kubeproxy"

func TestDiscoverListsCoreAndEveryPlugin(t *testing.T) {
	targets, err := Discover(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Target{}
	for _, tg := range targets {
		got[tg.Name] = tg
	}
	core, ok := got[CoreName]
	if !ok || targets[0].Name != CoreName {
		t.Fatalf("core image missing or not first: %+v", targets)
	}
	if core.Dir != "cmd" || core.VersionVar != "main.version" || strings.Join(core.Args, " ") != "manager" {
		t.Errorf("core target: %+v", core)
	}
	if core.Version != fileVersion(t, "cmd/VERSION") {
		t.Errorf("core version %q, cmd/VERSION says %q", core.Version, fileVersion(t, "cmd/VERSION"))
	}

	entries, err := os.ReadDir(filepath.Join(repoRoot, "plugins"))
	if err != nil {
		t.Fatal(err)
	}
	plugins := 0
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(repoRoot, "plugins", e.Name(), "cmd")); !e.IsDir() || err != nil {
			continue
		}
		plugins++
		tg, ok := got["kamaji-"+e.Name()]
		if !ok {
			t.Errorf("plugins/%s has a command but no image", e.Name())
			continue
		}
		if want := fileVersion(t, "plugins/"+e.Name()+"/VERSION"); tg.Version != want {
			t.Errorf("%s: version %q, VERSION says %q", tg.Name, tg.Version, want)
		}
		// The symbol must be the plugin's own: GetPluginInfo reports it.
		if !strings.HasPrefix(tg.VersionVar, "github.com/openhcp/kamaji/plugins/"+e.Name()+"/") || !strings.HasSuffix(tg.VersionVar, ".Version") {
			t.Errorf("%s: version symbol %q", tg.Name, tg.VersionVar)
		}
		if tg.Workspace || tg.Package != "./cmd/..." {
			t.Errorf("%s: a plugin builds ./cmd/... from its own go.mod: %+v", tg.Name, tg)
		}
	}
	if plugins == 0 || len(targets) != plugins+1 {
		t.Errorf("%d targets for %d plugins: %+v", len(targets), plugins, targets)
	}
}

func TestDiscoverNamesTheBadFile(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cmd/VERSION", "v1.0\n")
	write("plugins/datastore-x/cmd/kamaji-datastore-x/main.go", "package main\n\nfunc main() {}\n")
	write("plugins/datastore-x/go.mod", "module example.com/x\n")
	if _, err := Discover(root); err == nil || !strings.Contains(err.Error(), `cmd/VERSION: "v1.0" is not a release version`) {
		t.Fatalf("bad core VERSION: %v", err)
	}
	write("cmd/VERSION", "0.1.0\n")
	if _, err := Discover(root); err == nil || !strings.Contains(err.Error(), "plugins/datastore-x/VERSION") {
		t.Fatalf("missing plugin VERSION: %v", err)
	}
	write("plugins/datastore-x/VERSION", "0.2.0\n")
	if _, err := Discover(root); err == nil || !strings.Contains(err.Error(), "plugins/datastore-x: no package-level `var Version") {
		t.Fatalf("plugin without a Version variable: %v", err)
	}
	write("plugins/datastore-x/driver/driver.go", "package driver\n\nvar Version = \"0.0.0\"\n")
	targets, err := Discover(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := targets[1]; got.Name != "kamaji-datastore-x" || got.Version != "0.2.0" || got.VersionVar != "example.com/x/driver.Version" {
		t.Fatalf("plugin target: %+v", got)
	}
}

// TestBuildImages builds the core's and one plugin's images as `make images` does, reads the
// archives back and checks what a user pulling them gets: the configuration, the files, and the
// binaries themselves reporting the image's version.
func TestBuildImages(t *testing.T) {
	ctx := context.Background()
	out := t.TempDir()
	platform := Platform{OS: "linux", Architecture: runtime.GOARCH}
	var logs bytes.Buffer
	o := Options{
		Root: repoRoot, Out: out, Registry: "registry.test/openhcp", Source: defaultSource, CAFile: CAFile,
		Platforms: []Platform{platform}, Log: &logs,
	}
	all, err := Discover(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	targets, err := selectTargets(all, []string{CoreName, testPlugin})
	if err != nil {
		t.Fatal(err)
	}
	// Archives of older versions are replaced; another image's archive is kept.
	for _, stale := range []string{"kamaji-0.0.1.oci.tar", testPlugin + "-0.0.1-rc.1.oci.tar", "kamaji-datastore-other-0.0.1.oci.tar"} {
		if err := os.WriteFile(filepath.Join(out, stale), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The plugin's source default is its VERSION: a version of its own shows that the build
	// stamps it (the core's source default is "dev").
	targets[1].Version += "-images.test"
	results, err := buildTargets(ctx, o, targets)
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	if len(results) != 2 {
		t.Fatalf("results: %+v", results)
	}
	if strings.Count(logs.String(), "go build") != 2 {
		t.Errorf("want one go build per binary:\n%s", logs.String())
	}
	var left []string
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want := []string{CoreName + "-" + targets[0].Version + ".oci.tar", testPlugin + "-" + targets[1].Version + ".oci.tar", "kamaji-datastore-other-0.0.1.oci.tar"}
	if strings.Join(left, " ") != strings.Join(want, " ") {
		t.Errorf("%s holds %q, want %q", out, left, want)
	}
	revision, created := headCommit(t)
	hostCA, err := os.ReadFile(CAFile)
	if err != nil {
		t.Fatal(err)
	}

	for _, r := range results {
		t.Run(r.Target.Name, func(t *testing.T) {
			tg := r.Target
			wantRef := "registry.test/openhcp/" + tg.Name + ":" + tg.Version
			if r.Ref != wantRef || r.Archive != filepath.Join(out, tg.Name+"-"+tg.Version+".oci.tar") {
				t.Errorf("ref %s, archive %s", r.Ref, r.Archive)
			}
			if line := summary(r); !strings.HasPrefix(line, wantRef+"  "+r.Digest.String()+"  ") || !strings.HasSuffix(line, " MiB  "+r.Archive) {
				t.Errorf("summary line: %q", line)
			}
			a, err := ReadArchive(r.Archive, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if a.Ref() != wantRef || a.Entry.Annotations[AnnotationRefName] != tg.Version || a.Entry.Digest != r.Digest {
				t.Errorf("index.json entry: %+v", a.Entry)
			}
			imgs, err := a.Images()
			if err != nil || len(imgs) != 1 {
				t.Fatalf("images: %d, %v", len(imgs), err)
			}
			img := imgs[0]
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			entry := BinDir + "/" + tg.Name
			wantArgs := ""
			if tg.Name == CoreName {
				wantArgs = "manager"
			}
			c := cf.Config
			if c.User != "65532:65532" || strings.Join(c.Entrypoint, " ") != entry || strings.Join(c.Cmd, " ") != wantArgs {
				t.Errorf("user %q, entrypoint %q, cmd %q", c.User, c.Entrypoint, c.Cmd)
			}
			if cf.RootFS.Type != "layers" || len(cf.RootFS.DiffIDs) != 2 {
				t.Errorf("rootfs: %+v", cf.RootFS)
			}
			if cf.OS != platform.OS || cf.Architecture != platform.Architecture || !cf.Created.Time.Equal(created) {
				t.Errorf("os %s, arch %s, created %s (commit time %s)", cf.OS, cf.Architecture, cf.Created.Time, created)
			}
			for k, want := range map[string]string{
				LabelVersion: tg.Version, LabelTitle: tg.Name, LabelRevision: revision,
				LabelSource: defaultSource, LabelCreated: created.Format(time.RFC3339),
			} {
				if got := c.Labels[k]; got != want {
					t.Errorf("label %s = %q, want %q", k, got, want)
				}
			}

			files := flatten(t, img)
			bin, ok := files[entry[1:]]
			if !ok || bin.hdr.Typeflag != tar.TypeReg || bin.hdr.Mode&0o111 != 0o111 || bin.hdr.Uid != 0 {
				t.Fatalf("binary %s: %+v", entry, bin.hdr)
			}
			if ca := files[CAFile[1:]]; !bytes.Equal(ca.body, hostCA) {
				t.Errorf("%s: %d bytes, the host's has %d", CAFile, len(ca.body), len(hostCA))
			}
			if p := string(files["etc/passwd"].body); !strings.Contains(p, "\nnonroot:x:65532:65532:") {
				t.Errorf("/etc/passwd has no nonroot user:\n%s", p)
			}
			if tmp := files["tmp"]; tmp.hdr == nil || tmp.hdr.Mode != 0o1777 {
				t.Errorf("/tmp: %+v", tmp.hdr)
			}
			for name, f := range files {
				if !f.hdr.ModTime.Equal(created) {
					t.Errorf("%s: mtime %s, want the commit time %s", name, f.hdr.ModTime, created)
				}
			}

			// The binary as the image holds it: static, and stamped with the image's version.
			binFile := filepath.Join(t.TempDir(), tg.Name)
			if err := os.WriteFile(binFile, bin.body, 0o755); err != nil {
				t.Fatal(err)
			}
			assertStatic(t, binFile)
			if got := reportedVersion(t, binFile, tg.Name); got != tg.Version {
				t.Errorf("%s reports version %q, the image is %s", tg.Name, got, tg.Version)
			}

			// Reproducible: the layers rebuilt from the same inputs, on another path with a fresh
			// mtime, have the same digests, and the archive rewritten has the same bytes.
			layers, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			base, err := BaseLayer(CAFile, created)
			if err != nil {
				t.Fatal(err)
			}
			again, err := BinaryLayer(binFile, tg.Name, created)
			if err != nil {
				t.Fatal(err)
			}
			for i, l := range []v1.Layer{base, again} {
				if d1, d2 := digest(t, layers[i]), digest(t, l); d1 != d2 {
					t.Errorf("layer %d rebuilt: %s, in the image %s", i, d2, d1)
				}
			}
			rewritten := filepath.Join(t.TempDir(), "again.oci.tar")
			if _, err := WriteArchive(rewritten, a.Ref(), tg.Version, []Platform{platform}, imgs, created); err != nil {
				t.Fatal(err)
			}
			if b1, b2 := readFile(t, r.Archive), readFile(t, rewritten); !bytes.Equal(b1, b2) {
				t.Errorf("archive rewritten from the same image differs (%d vs %d bytes)", len(b1), len(b2))
			}
		})
	}

	t.Run("push", func(t *testing.T) {
		srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		defer srv.Close()
		prefix := strings.TrimPrefix(srv.URL, "http://") + "/mirror"
		var stdout, stderr bytes.Buffer
		if err := run(ctx, []string{"push", "--registry", prefix, results[1].Archive}, &stdout, &stderr); err != nil {
			t.Fatalf("%v\n%s", err, stderr.String())
		}
		ref := prefix + "/" + results[1].Target.Name + ":" + results[1].Target.Version
		if got, want := strings.TrimSpace(stdout.String()), ref+"@"+results[1].Digest.String(); got != want {
			t.Errorf("push printed %q, want %q", got, want)
		}
		parsed, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Head(parsed)
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest != results[1].Digest {
			t.Errorf("registry serves %s, the archive holds %s", desc.Digest, results[1].Digest)
		}
	})
}

// TestMultiPlatformArchive checks the index an archive holds when several platforms are asked
// for, with the core's image assembled for two architectures from one small binary (the binary's
// content is not what is checked here).
func TestMultiPlatformArchive(t *testing.T) {
	dir := t.TempDir()
	binFile := filepath.Join(dir, "kamaji")
	if err := os.WriteFile(binFile, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	created := time.Unix(1_700_000_000, 0).UTC()
	meta := Meta{Created: created, Revision: "0123456789abcdef", Source: defaultSource}
	base, err := BaseLayer(CAFile, created)
	if err != nil {
		t.Fatal(err)
	}
	platforms, err := ParsePlatforms("linux/amd64, linux/arm64,linux/amd64")
	if err != nil || len(platforms) != 2 {
		t.Fatalf("platforms %v, %v", platforms, err)
	}
	target := Target{Name: CoreName, Dir: "cmd", Version: "0.1.0", Args: []string{"manager"}}
	var imgs []v1.Image
	for _, p := range platforms {
		layer, err := BinaryLayer(binFile, target.Name, created)
		if err != nil {
			t.Fatal(err)
		}
		img, err := NewImage(target, p, base, layer, meta)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	archive := filepath.Join(dir, "kamaji-0.1.0.oci.tar")
	digest, err := WriteArchive(archive, "registry.test/openhcp/kamaji:0.1.0", "0.1.0", platforms, imgs, created)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ReadArchive(archive, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !a.Entry.MediaType.IsIndex() || a.Entry.Digest != digest {
		t.Fatalf("index.json entry: %+v", a.Entry)
	}
	idx, err := a.Index()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 2 || m.Manifests[0].Platform.Architecture != "amd64" || m.Manifests[1].Platform.Architecture != "arm64" {
		t.Fatalf("index manifests: %+v", m.Manifests)
	}
	got, err := a.Images()
	if err != nil {
		t.Fatal(err)
	}
	for i, img := range got {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != platforms[i].Architecture || cf.Config.User != User {
			t.Errorf("image %d: arch %s, user %s", i, cf.Architecture, cf.Config.User)
		}
	}

	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref, pushed, err := Push(context.Background(), archive, strings.TrimPrefix(srv.URL, "http://")+"/mirror")
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(parsed)
	if err != nil {
		t.Fatal(err)
	}
	if pushed != digest || desc.Digest != digest || !desc.MediaType.IsIndex() {
		t.Errorf("pushed %s, registry serves %s (%s), archive %s", pushed, desc.Digest, desc.MediaType, digest)
	}
}

// outOfTreePlugin is the third-party plugin module of the author guide, outside plugins/ and go.work.
const outOfTreePlugin = repoRoot + "/examples/datastore-plugin"

// TestBuildOutOfTreePlugin builds the example plugin module's image as its author does
// (docs/plugins/author-guide.md), and checks what the author reads off the output (the archive,
// the binary's sha256 for the chart) and what the image holds.
func TestBuildOutOfTreePlugin(t *testing.T) {
	const name = "kamaji-datastore-example"
	out := t.TempDir()
	platform := Platform{OS: "linux", Architecture: runtime.GOARCH}
	var stdout, stderr bytes.Buffer
	args := []string{"build", "--plugin", outOfTreePlugin, "--registry", "registry.test/acme", "--out", out, "--platforms", platform.String()}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	// Built from its own go.mod, its command alone, its Version stamped.
	if !strings.Contains(stderr.String(), "GOWORK=off go build") || !strings.Contains(stderr.String(), "-X example.com/kamaji-datastore-example/driver.Version=0.1.0") || !strings.HasSuffix(strings.TrimSpace(stderr.String()), "./cmd/"+name) {
		t.Errorf("build log:\n%s", stderr.String())
	}
	version := fileVersion(t, "examples/datastore-plugin/VERSION")
	ref := "registry.test/acme/" + name + ":" + version
	archive := filepath.Join(out, name+"-"+version+".oci.tar")
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], ref+"  sha256:") || !strings.HasSuffix(lines[0], " MiB  "+archive) {
		t.Fatalf("printed:\n%s", stdout.String())
	}
	fields := strings.Split(strings.TrimSpace(lines[1]), "  ")
	if len(fields) != 3 || fields[1] != BinDir+"/"+name || fields[2] != platform.String() || len(fields[0]) != 64 {
		t.Fatalf("binary line %q, want \"  <sha256>  %s/%s  %s\"", lines[1], BinDir, name, platform)
	}

	a, err := ReadArchive(archive, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if a.Ref() != ref {
		t.Errorf("archive reference %q, want %q", a.Ref(), ref)
	}
	imgs, err := a.Images()
	if err != nil || len(imgs) != 1 {
		t.Fatalf("images: %d, %v", len(imgs), err)
	}
	cf, err := imgs[0].ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != User || strings.Join(c.Entrypoint, " ") != BinDir+"/"+name || len(c.Cmd) != 0 {
		t.Errorf("user %q, entrypoint %q, cmd %q", c.User, c.Entrypoint, c.Cmd)
	}
	revision, created := headCommit(t)
	want := map[string]string{
		LabelVersion: version, LabelTitle: name, LabelRevision: revision, LabelCreated: created.Format(time.RFC3339),
	}
	if len(c.Labels) != len(want) {
		t.Errorf("labels %v, want %v (no source label without --source)", c.Labels, want)
	}
	for k, v := range want {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}
	// The history names the module, not where it was checked out: same sources, same image.
	if n := len(cf.History); n != 2 || !strings.HasSuffix(cf.History[1].CreatedBy, " from example.com/kamaji-datastore-example") {
		t.Errorf("history: %+v", cf.History)
	}

	files := flatten(t, imgs[0])
	bin, ok := files[BinDir[1:]+"/"+name]
	if !ok || bin.hdr.Mode&0o111 != 0o111 || bin.hdr.Uid != 0 {
		t.Fatalf("binary %s/%s: %+v", BinDir, name, bin.hdr)
	}
	if p := string(files["etc/passwd"].body); !strings.Contains(p, "\nnonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot user:\n%s", p)
	}
	if len(files[CAFile[1:]].body) == 0 {
		t.Errorf("no %s", CAFile)
	}
	binFile := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(binFile, bin.body, 0o755); err != nil {
		t.Fatal(err)
	}
	assertStatic(t, binFile)
	// The printed sha256 is the one the manager checks before starting the binary.
	c2, err := datastore.NewClient(sdk.ClientConfig{Path: binFile, SHA256: fields[0]})
	if err != nil {
		t.Fatalf("start %s with the printed sha256: %v", name, err)
	}
	defer c2.Close()
	if info := c2.Info(); info.VendorVersion != version || strings.Join(info.Drivers, ",") != "example-etcd" {
		t.Errorf("GetPluginInfo: %+v, want version %s and driver example-etcd", info, version)
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"build", "--registry", "Ghcr.io/UPPER"}, `--registry: "Ghcr.io/UPPER" is not a reference prefix`},
		{[]string{"build", "--platforms", "linux"}, `--platforms: "linux" is not os/arch`},
		{[]string{"build", "--only", "kamaji-nope", "--root", repoRoot}, `--only: no image "kamaji-nope"`},
		{[]string{"build", "--plugin", repoRoot + "/plugins"}, "want the directory of the plugin's go.mod"},
		{[]string{"build", "--plugin", outOfTreePlugin, "--only", "kamaji"}, "--only and --plugin"},
		{[]string{"push"}, "push: want one or more archives"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
	} {
		err := run(context.Background(), tc.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.args, err, tc.want)
		}
	}
}

type file struct {
	hdr  *tar.Header
	body []byte
}

// flatten reads the image's filesystem as a container runtime unpacks it.
func flatten(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]file{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = file{hdr: h, body: b}
	}
}

// reportedVersion is the version a user sees: `kamaji version` for the core, GetPluginInfo's
// VendorVersion for a plugin started through the SDK as the manager starts it.
func reportedVersion(t *testing.T, bin, name string) string {
	t.Helper()
	if name == CoreName {
		out, err := exec.Command(bin, "version").CombinedOutput()
		if err != nil {
			t.Fatalf("%s version: %v\n%s", bin, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	sum, err := sdk.FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	c, err := addon.NewClient(sdk.ClientConfig{Path: bin, SHA256: sum})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.Info().VendorVersion
}

func assertStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s is dynamically linked (program header %s)", bin, p.Type)
		}
	}
}

func headCommit(t *testing.T) (string, time.Time) {
	t.Helper()
	out, err := exec.Command("git", "-C", repoRoot, "log", "-1", "--format=%H %ct").Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	sec, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if sec, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	return f[0], time.Unix(sec, 0).UTC()
}

func fileVersion(t *testing.T, rel string) string {
	t.Helper()
	return strings.TrimSpace(string(readFile(t, filepath.Join(repoRoot, rel))))
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func digest(t *testing.T, l v1.Layer) v1.Hash {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
