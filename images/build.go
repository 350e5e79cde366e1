package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/openhcp/kamaji/sdk"
)

// Platform is an os/arch[/variant] pair.
type Platform = v1.Platform

// ParsePlatforms reads "linux/amd64,linux/arm64", dropping repeats.
func ParsePlatforms(s string) ([]Platform, error) {
	var out []Platform
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := v1.ParsePlatform(f)
		if err != nil || p.OS == "" || p.Architecture == "" {
			return nil, fmt.Errorf("--platforms: %q is not os/arch such as linux/amd64", f)
		}
		if !seen[p.String()] {
			seen[p.String()] = true
			out = append(out, *p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--platforms: empty")
	}
	return out, nil
}

// DefaultPlatforms is linux/amd64 and the build host's architecture.
func DefaultPlatforms() string { return "linux/amd64,linux/" + runtime.GOARCH }

// Options of one build.
type Options struct {
	Root      string     // repository root
	Out       string     // directory the archives are written to
	Registry  string     // reference prefix, e.g. ghcr.io/openhcp
	Source    string     // org.opencontainers.image.source
	CAFile    string     // CA bundle copied into every image
	Platforms []Platform // one binary per target and platform
	Only      []string   // target names to build; empty means all
	Plugin    string     // a plugin module outside plugins/ (DiscoverModule) to build instead
	Log       io.Writer  // progress: the go build lines and warnings
}

// Result is one written archive.
type Result struct {
	Target   Target
	Ref      string   // registry/name:version
	Archive  string   // path of the OCI archive
	Digest   v1.Hash  // of the image manifest (one platform) or of the index (several)
	Size     int64    // bytes of the archive
	Binaries []Binary // one per platform, in the order of Options.Platforms
}

// Binary is the image's binary for one platform.
type Binary struct {
	Platform Platform
	Path     string // in the image: BinDir/<name>
	SHA256   string // hex, the checksum the manager pins a plugin by (the chart's plugins[].sha256)
}

// Build builds each selected target's binary once per platform, assembles its image and writes
// one OCI archive per target.
func Build(ctx context.Context, o Options) ([]Result, error) {
	if o.Plugin != "" {
		if len(o.Only) > 0 {
			return nil, fmt.Errorf("--only and --plugin: --plugin builds the one image of its module")
		}
		t, err := DiscoverModule(o.Plugin)
		if err != nil {
			return nil, err
		}
		return buildTargets(ctx, o, []Target{t})
	}
	targets, err := Discover(o.Root)
	if err != nil {
		return nil, err
	}
	targets, err = selectTargets(targets, o.Only)
	if err != nil {
		return nil, err
	}
	return buildTargets(ctx, o, targets)
}

func buildTargets(ctx context.Context, o Options, targets []Target) ([]Result, error) {
	gitDir := o.Root
	if o.Plugin != "" {
		gitDir = o.Plugin // the module's own repository labels its image
	}
	meta, err := gitMeta(ctx, gitDir, o.Source, o.Log)
	if err != nil {
		return nil, err
	}
	if len(o.Platforms) == 0 {
		return nil, fmt.Errorf("no platform to build for")
	}
	base, err := BaseLayer(o.CAFile, meta.Created)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(o.Out, ".build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	var results []Result
	for _, t := range targets {
		var imgs []v1.Image
		var bins []Binary
		for _, p := range o.Platforms {
			bin := filepath.Join(work, p.OS+"-"+p.Architecture+p.Variant, t.Name)
			if err := BuildBinary(ctx, o.Root, t, p, bin, o.Log); err != nil {
				return nil, err
			}
			sum, err := sdk.FileSHA256(bin)
			if err != nil {
				return nil, err
			}
			bins = append(bins, Binary{Platform: p, Path: BinDir + "/" + t.Name, SHA256: sum})
			layer, err := BinaryLayer(bin, t.Name, meta.Created)
			if err != nil {
				return nil, err
			}
			img, err := NewImage(t, p, base, layer, meta)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.Name, err)
			}
			imgs = append(imgs, img)
			os.Remove(bin) // the layer holds it; keep the work dir small
		}
		ref := o.Registry + "/" + t.Name + ":" + t.Version
		archive := filepath.Join(o.Out, t.Name+"-"+t.Version+".oci.tar")
		digest, err := WriteArchive(archive, ref, t.Version, o.Platforms, imgs, meta.Created)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.Name, err)
		}
		st, err := os.Stat(archive)
		if err != nil {
			return nil, err
		}
		results = append(results, Result{Target: t, Ref: ref, Archive: archive, Digest: digest, Size: st.Size(), Binaries: bins})
		if err := removeStale(o.Out, t, o.Log); err != nil {
			return nil, err
		}
	}
	return results, nil
}

// removeStale deletes the archives of t's other versions, so that bin/images holds one archive
// per image (tools that glob it, such as the chart's digests, see only the current ones). The
// version must follow "<name>-" for a match: kamaji-0.1.0 is the core's, kamaji-addon-x-0.1.0 is not.
func removeStale(out string, t Target, log io.Writer) error {
	matches, err := filepath.Glob(filepath.Join(out, t.Name+"-*.oci.tar"))
	if err != nil {
		return err
	}
	for _, m := range matches {
		v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), t.Name+"-"), ".oci.tar")
		if v == t.Version || !versionRE.MatchString(v) {
			continue
		}
		if err := os.Remove(m); err != nil {
			return err
		}
		if log != nil {
			fmt.Fprintf(log, "removed %s (%s is now %s)\n", m, t.Name, t.Version)
		}
	}
	return nil
}

func selectTargets(all []Target, only []string) ([]Target, error) {
	if len(only) == 0 {
		return all, nil
	}
	byName := map[string]Target{}
	var names []string
	for _, t := range all {
		byName[t.Name] = t
		names = append(names, t.Name)
	}
	var out []Target
	for _, n := range only {
		t, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("--only: no image %q (images: %s)", n, strings.Join(names, ", "))
		}
		out = append(out, t)
	}
	return out, nil
}

// BuildBinary builds t's static binary for p into out, with its version stamped in. -trimpath and
// no VCS stamping keep the bytes the same for the same sources and toolchain.
func BuildBinary(ctx context.Context, root string, t Target, p Platform, out string, log io.Writer) error {
	out, err := filepath.Abs(out) // go build runs in the module's directory
	if err != nil {
		return err
	}
	args := []string{"build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X " + t.VersionVar + "=" + t.Version, "-o", out, t.Package}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = t.Dir
	if !filepath.IsAbs(t.Dir) {
		cmd.Dir = filepath.Join(root, t.Dir)
	}
	env := []string{"CGO_ENABLED=0", "GOOS=" + p.OS, "GOARCH=" + p.Architecture}
	if p.Variant != "" && p.Architecture == "arm" {
		env = append(env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	if !t.Workspace {
		env = append(env, "GOWORK=off") // a plugin builds from its own go.mod, as its release does
	}
	cmd.Env = append(os.Environ(), env...)
	if log != nil {
		fmt.Fprintf(log, "cd %s && %s go %s\n", t.Dir, strings.Join(env, " "), strings.Join(quoteArgs(args), " "))
	}
	if outb, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s for %s: %w\n%s", t.Name, p.String(), err, outb)
	}
	return nil
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \"'") {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return out
}

// gitMeta reads the commit and its time. SOURCE_DATE_EPOCH, when set, overrides the time (the
// reproducible-builds convention).
func gitMeta(ctx context.Context, root, source string, log io.Writer) (Meta, error) {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "log", "-1", "--format=%H %ct").Output()
	if err != nil {
		return Meta{}, fmt.Errorf("git log in %s: %w (the images are labelled with the commit and stamped with its time)", root, err)
	}
	fields := strings.Fields(string(out))
	if len(fields) != 2 {
		return Meta{}, fmt.Errorf("git log in %s: unexpected output %q", root, out)
	}
	epoch, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return Meta{}, fmt.Errorf("git log in %s: commit time %q: %w", root, fields[1], err)
	}
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if epoch, err = strconv.ParseInt(s, 10, 64); err != nil {
			return Meta{}, fmt.Errorf("SOURCE_DATE_EPOCH: %q is not a number of seconds", s)
		}
	}
	if st, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 && log != nil {
		fmt.Fprintf(log, "warning: uncommitted changes: the images hold them but are labelled with revision %s\n", fields[0])
	}
	return Meta{Created: time.Unix(epoch, 0).UTC(), Revision: fields[0], Source: source}, nil
}

// imageIndex wraps several platforms' images in one OCI index.
func imageIndex(platforms []Platform, imgs []v1.Image) v1.ImageIndex {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for i, img := range imgs {
		p := platforms[i]
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return idx
}
