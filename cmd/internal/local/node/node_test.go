package node

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"POD_IP": "10.244.0.7", "A": "x"}
	for in, want := range map[string]string{
		"--advertise-address=$(POD_IP)": "--advertise-address=10.244.0.7",
		"$(A)$(A)-$(MISSING)":           "xx-$(MISSING)",
		"$$(A) stays":                   "$(A) stays",
		"no vars $":                     "no vars $",
		"$(unterminated":                "$(unterminated",
	} {
		if got := Expand(in, vars); got != want {
			t.Errorf("Expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestImageMap(t *testing.T) {
	cache := t.TempDir()
	bin := filepath.Join(cache, "kube", "v1.37.2", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "kube-apiserver"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := LoadImages(filepath.Join(cache, "absent.yaml"), cache)
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.Resolve("registry.k8s.io/kube-apiserver:v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := r.Lookup("kube-apiserver"); err != nil || p != filepath.Join(bin, "kube-apiserver") {
		t.Errorf("lookup: %s %v", p, err)
	}
	if _, err := r.Lookup("/bin/sh"); err == nil {
		t.Error("a host binary outside the image folder must not resolve")
	}
	// The tag selects the version folder: an unbuilt version is named, with the path.
	_, err = m.Resolve("registry.k8s.io/kube-apiserver:v1.36.1")
	if err == nil || !strings.Contains(err.Error(), "registry.k8s.io/kube-apiserver:v1.36.1") || !strings.Contains(err.Error(), "v1.36.1/bin") {
		t.Errorf("unbuilt version: %v", err)
	}
	_, err = m.Resolve("example.invalid/app:1")
	if err == nil || !strings.Contains(err.Error(), `"example.invalid/app:1"`) || !strings.Contains(err.Error(), "no rule") {
		t.Errorf("unknown image: %v", err)
	}
}

func TestMatchGlob(t *testing.T) {
	g, ok := matchGlob("rancher/kine:*-amd64", "rancher/kine:v0.17.5-amd64")
	if !ok || len(g) != 1 || g[0] != "v0.17.5" {
		t.Errorf("got %v %v", g, ok)
	}
	if _, ok := matchGlob("a/b:*", "a/bc:1"); ok {
		t.Error("matched a different repository")
	}
}

func TestIPAM(t *testing.T) {
	_, subnet, _ := net.ParseCIDR("10.9.0.0/29")
	a := newIPAM(subnet, net.ParseIP("10.9.0.1"))
	seen := map[string]bool{}
	for range 5 { // .2 to .6: network, gateway and broadcast are skipped
		ip, err := a.allocate()
		if err != nil {
			t.Fatal(err)
		}
		if seen[ip.String()] || ip.String() == "10.9.0.1" || ip.String() == "10.9.0.0" || ip.String() == "10.9.0.7" {
			t.Fatalf("bad address %s (seen %v)", ip, seen)
		}
		seen[ip.String()] = true
	}
	if _, err := a.allocate(); err == nil {
		t.Fatal("allocated past the end of the subnet")
	}
	a.release(net.ParseIP("10.9.0.4"))
	if ip, err := a.allocate(); err != nil || ip.String() != "10.9.0.4" {
		t.Fatalf("released address not reused: %v %v", ip, err)
	}
}

// A node stops its pods with their grace periods (capped), except when `kamaji local down`
// takes the whole plane away, and a later up's node is graceful again.
func TestShutdownGrace(t *testing.T) {
	state := t.TempDir()
	if got := shutdownGrace(state); got != ShutdownGrace {
		t.Errorf("a node stopping alone: grace capped at %s, want %s", got, ShutdownGrace)
	}
	marker := filepath.Join(state, TeardownFile)
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := shutdownGrace(state); got != TeardownGrace {
		t.Errorf("the plane going down: grace capped at %s, want %s", got, TeardownGrace)
	}
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	if got := shutdownGrace(state); got != ShutdownGrace {
		t.Errorf("after the marker went: grace capped at %s, want %s", got, ShutdownGrace)
	}
}
