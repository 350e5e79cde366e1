// Package krew holds the krew manifest of kubectl-kamaji (kamaji.yaml, a template rendered
// with envsubst at release time); this test renders it and checks what krew requires.
package krew

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

type manifest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string `json:"version"`
		Homepage         string `json:"homepage"`
		ShortDescription string `json:"shortDescription"`
		Description      string `json:"description"`
		Platforms        []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			SHA256 string `json:"sha256"`
			Bin    string `json:"bin"`
		} `json:"platforms"`
	} `json:"spec"`
}

func TestManifestRenders(t *testing.T) {
	tmpl, err := os.ReadFile("kamaji.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var unknown []string
	rendered := os.Expand(string(tmpl), func(v string) string {
		switch {
		case v == "VERSION":
			return "v0.1.0"
		case strings.HasPrefix(v, "SHA256_"):
			return strings.Repeat("a", 64)
		}
		unknown = append(unknown, v)
		return ""
	})
	if len(unknown) > 0 {
		t.Fatalf("placeholders without a documented value: %v", unknown)
	}
	var m manifest
	if err := yaml.UnmarshalStrict([]byte(rendered), &m); err != nil {
		t.Fatalf("rendered manifest: %v\n%s", err, rendered)
	}
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin" || m.Metadata.Name != "kamaji" {
		t.Fatalf("header %s %s %s", m.APIVersion, m.Kind, m.Metadata.Name)
	}
	if m.Spec.Version != "v0.1.0" || m.Spec.Homepage == "" || m.Spec.Description == "" || len(m.Spec.ShortDescription) > 50 {
		t.Fatalf("spec %+v (shortDescription must stay short)", m.Spec)
	}
	seen := map[string]bool{}
	for _, p := range m.Spec.Platforms {
		osArch := p.Selector.MatchLabels["os"] + "_" + p.Selector.MatchLabels["arch"]
		seen[osArch] = true
		if p.Bin != "kubectl-kamaji" || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(p.SHA256) ||
			!strings.HasPrefix(p.URI, "https://") || !strings.HasSuffix(p.URI, "/kubectl-kamaji_v0.1.0_"+osArch+".tar.gz") {
			t.Errorf("platform %s: %+v", osArch, p)
		}
	}
	for _, want := range []string{"linux_amd64", "linux_arm64", "darwin_amd64", "darwin_arm64"} {
		if !seen[want] {
			t.Errorf("no %s platform", want)
		}
	}
}
