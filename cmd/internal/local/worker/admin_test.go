package worker

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func adminTestConfig() Config {
	c := Config{Name: "local-node", Dir: "/state/admin-node", HostNetwork: true, Address: "10.244.0.1", CgroupName: "kamaji-admin-node", Registry: "127.0.0.1:5100"}
	c.Defaults()
	return c
}

func TestAdminNames(t *testing.T) {
	c := adminTestConfig()
	if c.NodeIP() != "10.244.0.1" || c.Cgroup() != "/kamaji-admin-node" || c.registry() != "127.0.0.1:5100" {
		t.Errorf("node %s, cgroup %s, registry %s", c.NodeIP(), c.Cgroup(), c.registry())
	}
	if !strings.Contains(RegistryHosts(c.registry()), `server = "http://127.0.0.1:5100"`) {
		t.Errorf("hosts.toml:\n%s", RegistryHosts(c.registry()))
	}
}

// The admin node's pods sit on the plane's bridge from RangeStart on, and the plugins write no
// rule into the host's tables (no masquerade, no port mapping).
func TestAdminCNIConfig(t *testing.T) {
	a := Admin{Bridge: "kamaji0", PodCIDR: "10.244.0.0/16", RangeStart: "10.244.1.1", Gateway: "10.244.0.1"}
	var got struct {
		Plugins []struct {
			Type   string
			Bridge string
			IPMasq bool `json:"ipMasq"`
			IPAM   struct {
				Ranges [][]map[string]string
			}
		}
	}
	if err := json.Unmarshal([]byte(a.AdminCNIConfig()), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Plugins) != 1 || got.Plugins[0].Type != "bridge" || got.Plugins[0].Bridge != "kamaji0" || got.Plugins[0].IPMasq {
		t.Fatalf("plugins %+v", got.Plugins)
	}
	want := map[string]string{"subnet": "10.244.0.0/16", "rangeStart": "10.244.1.1", "gateway": "10.244.0.1"}
	if r := got.Plugins[0].IPAM.Ranges; len(r) != 1 || len(r[0]) != 1 || !reflect.DeepEqual(r[0][0], want) {
		t.Errorf("ranges %v, want %v", r, want)
	}
}

func TestAdminKubeletConfig(t *testing.T) {
	c := adminTestConfig()
	var got map[string]any
	if err := yaml.Unmarshal([]byte(c.AdminKubeletConfig("/state/pki/ca.crt", "10.96.0.10", 10248)), &got); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]any{
		"kind": "KubeletConfiguration", "address": "10.244.0.1", "cgroupRoot": "/kamaji-admin-node", "cgroupDriver": "cgroupfs",
		"failCgroupV1": false, "failSwapOn": false, "readOnlyPort": float64(0), "healthzPort": float64(10248),
		"clusterDNS": []any{"10.96.0.10"}, "clusterDomain": "cluster.local",
		"authentication.anonymous.enabled": false, "authentication.webhook.enabled": true,
		"authentication.x509.clientCAFile": "/state/pki/ca.crt", "authorization.mode": "Webhook",
		"evictionHard.nodefs.available": "0%", "containerRuntimeEndpoint": "unix:///run/containerd/containerd.sock",
	} {
		var v any = got
		for _, k := range splitPath(path) {
			m, _ := v.(map[string]any)
			v = m[k]
		}
		if !reflect.DeepEqual(v, want) {
			t.Errorf("%s = %#v, want %#v", path, v, want)
		}
	}
}

// splitPath splits a.b.c, keeping nodefs.available (an eviction signal) whole.
func splitPath(p string) []string {
	if rest, ok := strings.CutPrefix(p, "evictionHard."); ok {
		return []string{"evictionHard", rest}
	}
	return strings.Split(p, ".")
}

// An image indexed under the tag "*" answers every tag of its repository, after the exact tags.
func TestRegistryAnyTag(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "kamaji")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	reg := filepath.Join(dir, "registry")
	anyImg, err := ProgramImage("ghcr.io/openhcp/kamaji:"+AnyTag, map[string]string{"usr/local/bin/kamaji": bin}, []string{"/usr/local/bin/kamaji"}, "65532:65532")
	if err != nil {
		t.Fatal(err)
	}
	exact := anyImg
	exact.Ref, exact.Env = "ghcr.io/openhcp/kamaji:v0.1.0", []string{"EXACT=1"}
	digests, err := BuildImages(reg, []Image{anyImg, exact})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Registry{Dir: reg})
	defer srv.Close()
	digestOfTag := func(path string) (string, int) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Header.Get("Docker-Content-Digest"), resp.StatusCode
	}
	for path, want := range map[string]string{
		"/v2/openhcp/kamaji/manifests/v0.1.0?ns=ghcr.io":                      digests[exact.Ref],
		"/v2/openhcp/kamaji/manifests/v9.9.9?ns=ghcr.io":                      digests[anyImg.Ref],
		"/v2/openhcp/kamaji/manifests/" + digests[anyImg.Ref] + "?ns=ghcr.io": digests[anyImg.Ref],
	} {
		if got, code := digestOfTag(path); code != 200 || got != want {
			t.Errorf("%s: %d %s, want %s", path, code, got, want)
		}
	}
	for _, path := range []string{"/v2/openhcp/kamaji-datastore-etcd/manifests/v1?ns=ghcr.io", "/v2/openhcp/kamaji/manifests/v1?ns=docker.io",
		"/v2/openhcp/kamaji/manifests/sha256:" + strings.Repeat("0", 64) + "?ns=ghcr.io"} {
		if _, code := digestOfTag(path); code != 404 {
			t.Errorf("%s: %d, want 404", path, code)
		}
	}
}

// A program image carries the program, /tmp, the host's CA bundle when there is one, the
// libraries a dynamically linked program loads, and its user.
func TestProgramImage(t *testing.T) {
	ls, err := filepath.EvalSymlinks("/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	img, err := ProgramImage("example.org/ls:v1", map[string]string{"usr/local/bin/ls": ls}, []string{"/usr/local/bin/ls"}, "65532:65532")
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]File{}
	for _, f := range img.Files {
		paths[f.Path] = f
	}
	if f := paths["usr/local/bin/ls"]; f.From != ls || f.Mode != 0o755 {
		t.Errorf("the program: %+v", f)
	}
	if f := paths["tmp"]; !f.Dir || f.Mode != 0o1777 {
		t.Errorf("/tmp: %+v", f)
	}
	if _, err := os.Stat(caBundle); err == nil {
		if _, ok := paths[caBundle[1:]]; !ok {
			t.Errorf("no %s", caBundle)
		}
	}
	libs, err := hostLibraries(ls)
	if err != nil || len(libs) == 0 {
		t.Fatalf("ldd %s: %v %v", ls, libs, err)
	}
	for _, l := range libs {
		if f, ok := paths[l[1:]]; !ok || f.From != l {
			t.Errorf("library %s is not in the image", l)
		}
	}
	if img.User != "65532:65532" || !reflect.DeepEqual(img.Entrypoint, []string{"/usr/local/bin/ls"}) {
		t.Errorf("user %q, entrypoint %v", img.User, img.Entrypoint)
	}
	if _, err := layerTar(img.Files); err != nil {
		t.Errorf("layer: %v", err)
	}
}

func TestNormalizeRef(t *testing.T) {
	for in, want := range map[string]string{
		"rancher/kine:v0.17.5-amd64":       "docker.io/rancher/kine:v0.17.5-amd64",
		"busybox:latest":                   "docker.io/library/busybox:latest",
		"docker.io/library/busybox:latest": "docker.io/library/busybox:latest",
		"registry.k8s.io/pause:3.10.2":     "registry.k8s.io/pause:3.10.2",
		"ghcr.io/openhcp/kamaji:*":         "ghcr.io/openhcp/kamaji:*",
		"localhost/x:1":                    "localhost/x:1",
		"127.0.0.1:5000/team/app:v1":       "127.0.0.1:5000/team/app:v1",
	} {
		if got := NormalizeRef(in); got != want {
			t.Errorf("NormalizeRef(%q) = %q, want %q", in, got, want)
		}
	}
}
