// Package charts_test renders and checks the kamaji and kamaji-crds charts with the real helm
// binary (hack/helm.sh builds it into the cache on first use).
package charts_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"
)

// HelmVersion is the helm the tests run; keep in step with hack/helm.sh.
const HelmVersion = "v3.22.0"

var (
	helmOnce sync.Once
	helmPath string
	helmErr  error
)

// helm returns the cached helm binary, building it with hack/helm.sh on first use.
func helm(t *testing.T) string {
	t.Helper()
	helmOnce.Do(func() {
		cache := os.Getenv("KAMAJI_CACHE")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache", "kamaji")
		}
		helmPath = filepath.Join(cache, "helm", HelmVersion, "bin", "helm")
		if _, err := os.Stat(helmPath); err == nil {
			return
		}
		cmd := exec.Command(filepath.Join(repoRoot(t), "hack", "helm.sh"))
		cmd.Env = append(os.Environ(), "HELM_VERSION="+HelmVersion)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			helmErr = fmt.Errorf("hack/helm.sh: %w", err)
		}
	})
	if helmErr != nil {
		t.Fatal(helmErr)
	}
	return helmPath
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.work")); err != nil {
		t.Fatalf("repository root not found: %v", err)
	}
	return dir
}

// runHelm runs helm with args and returns its stdout; a failure returns stderr as the error.
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helm(t), args...)
	// No user configuration: the tests see the charts only.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// render is `helm template kamaji CHART -n kamaji-system` with the given extra arguments.
func render(t *testing.T, chart string, args ...string) (string, error) {
	t.Helper()
	return runHelm(t, append([]string{"template", "kamaji", chart, "--namespace", "kamaji-system"}, args...)...)
}

// doc is one rendered object: its kind, name and JSON.
type doc struct {
	APIVersion, Kind, Name, Source string
	JSON                           []byte
}

func splitDocs(t *testing.T, manifest string) []doc {
	t.Helper()
	var out []doc
	r := yaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	for {
		raw, err := r.Read()
		if err != nil {
			break
		}
		source := ""
		for _, l := range strings.Split(string(raw), "\n") {
			if s, ok := strings.CutPrefix(l, "# Source: "); ok {
				source = s
			}
		}
		j, err := sigsyaml.YAMLToJSON(raw)
		if err != nil {
			t.Fatalf("%s: not YAML: %v\n%s", source, err, raw)
		}
		if string(j) == "null" {
			continue
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := sigsyaml.Unmarshal(j, &meta); err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		out = append(out, doc{APIVersion: meta.APIVersion, Kind: meta.Kind, Name: meta.Metadata.Name, Source: source, JSON: j})
	}
	return out
}

// only returns the documents of a kind.
func only(docs []doc, kind string) []doc {
	var out []doc
	for _, d := range docs {
		if d.Kind == kind {
			out = append(out, d)
		}
	}
	return out
}

var (
	kamajiOnce sync.Once
	kamajiBin  string
	kamajiErr  error
)

// kamaji builds the kamaji binary of this tree once per test run.
func kamaji(t *testing.T) string {
	t.Helper()
	kamajiOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kamaji-charts-test-")
		if err != nil {
			kamajiErr = err
			return
		}
		kamajiBin = filepath.Join(dir, "kamaji")
		cmd := exec.Command("go", "build", "-o", kamajiBin, "./kamaji")
		cmd.Dir = filepath.Join(repoRoot(t), "cmd")
		if out, err := cmd.CombinedOutput(); err != nil {
			kamajiErr = fmt.Errorf("go build ./cmd/kamaji: %v\n%s", err, out)
		}
	})
	if kamajiErr != nil {
		t.Fatal(kamajiErr)
	}
	return kamajiBin
}
