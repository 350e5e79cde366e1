// Command images builds the container images of kamaji and of each plugin without Docker: a
// static binary, the nonroot user and the CA certificates, written as OCI archives. Each image is
// tagged with its own module's VERSION (cmd/VERSION, plugins/<plugin>/VERSION).
//
//	images build [--root DIR] [--out DIR] [--registry PREFIX] [--platforms linux/amd64,...] [--only NAME,...]
//	images build --plugin MODULE-DIR [--out DIR] [--registry PREFIX] [--source URL] [--platforms ...]
//	images push [--registry PREFIX] ARCHIVE...
//	images list [--root DIR] [--registry PREFIX]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
)

const (
	defaultRegistry = "ghcr.io/openhcp"
	defaultSource   = "https://github.com/openhcp/kamaji"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("want a command: build, push or list")
	}
	fs := flag.NewFlagSet("images "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	registry := fs.String("registry", defaultRegistry, "reference prefix of the images, e.g. ghcr.io/openhcp or localhost:5000/kamaji")
	switch args[0] {
	case "build":
		root := fs.String("root", "..", "repository root")
		out := fs.String("out", "../bin/images", "directory the archives <name>-<version>.oci.tar are written to")
		source := fs.String("source", defaultSource, "org.opencontainers.image.source label")
		caFile := fs.String("ca-file", CAFile, "CA bundle copied to "+CAFile+" in every image")
		platforms := fs.String("platforms", DefaultPlatforms(), "comma-separated os/arch list; several make a multi-platform index")
		only := fs.String("only", "", "comma-separated image names to build (default: all)")
		plugin := fs.String("plugin", "", "a plugin module directory outside plugins/ (its go.mod, VERSION and one cmd/<binary>): build its image alone")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *plugin != "" && !flagSet(fs, "source") {
			*source = "" // this repository is not a third party's plugin's source
		}
		if err := checkRegistry(*registry); err != nil {
			return err
		}
		ps, err := ParsePlatforms(*platforms)
		if err != nil {
			return err
		}
		o := Options{Root: *root, Out: *out, Registry: *registry, Source: *source, CAFile: *caFile, Platforms: ps, Plugin: *plugin, Log: stderr}
		if *only != "" {
			o.Only = strings.Split(*only, ",")
		}
		results, err := Build(ctx, o)
		if err != nil {
			return err
		}
		for _, r := range results {
			fmt.Fprintln(stdout, summary(r))
			for _, b := range r.Binaries {
				fmt.Fprintln(stdout, binaryLine(b))
			}
		}
		return nil
	case "push":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return fmt.Errorf("push: want one or more archives (bin/images/*.oci.tar)")
		}
		override := ""
		if flagSet(fs, "registry") {
			override = *registry
		}
		if override != "" {
			if err := checkRegistry(override); err != nil {
				return err
			}
		}
		for _, a := range fs.Args() {
			ref, digest, err := Push(ctx, a, override)
			if err != nil {
				return fmt.Errorf("push %s: %w", a, err)
			}
			fmt.Fprintf(stdout, "%s@%s\n", ref, digest)
		}
		return nil
	case "list":
		root := fs.String("root", "..", "repository root")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		targets, err := Discover(*root)
		if err != nil {
			return err
		}
		for _, t := range targets {
			fmt.Fprintf(stdout, "%s/%s:%s\t%s\t%s/%s\n", *registry, t.Name, t.Version, filepath.ToSlash(t.Dir), BinDir, t.Name)
		}
		return nil
	default:
		return fmt.Errorf("unknown command %q: want build, push or list", args[0])
	}
}

// checkRegistry refuses a prefix that makes no valid reference, before anything is built.
func checkRegistry(r string) error {
	if r == "" || strings.HasSuffix(r, "/") {
		return fmt.Errorf("--registry: %q is not a reference prefix such as ghcr.io/openhcp", r)
	}
	if _, err := name.NewTag(r+"/kamaji:0.1.0", name.StrictValidation); err != nil {
		return fmt.Errorf("--registry: %q is not a reference prefix such as ghcr.io/openhcp: %v", r, err)
	}
	return nil
}

// summary is the one line printed per image: reference, digest, archive size, archive path.
func summary(r Result) string {
	return fmt.Sprintf("%s  %s  %.1f MiB  %s", r.Ref, r.Digest, float64(r.Size)/(1<<20), r.Archive)
}

// binaryLine is the line printed under an image's summary per platform: the sha256 of its binary,
// as sha256sum prints it, then the binary's path in the image and the platform.
func binaryLine(b Binary) string {
	return fmt.Sprintf("  %s  %s  %s", b.SHA256, b.Path, b.Platform.String())
}

// flagSet reports whether the command line gave the flag.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
