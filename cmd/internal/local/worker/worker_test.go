package worker

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
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

const joinLine = "kubeadm join 10.96.12.34:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:" +
	"1111111111111111111111111111111111111111111111111111111111111111"

func TestParseJoin(t *testing.T) {
	j, err := ParseJoin(joinLine + "\n")
	if err != nil {
		t.Fatal(err)
	}
	want := Join{Endpoint: "10.96.12.34:6443", Token: "abcdef.0123456789abcdef", CACertHashes: []string{"sha256:" + strings.Repeat("1", 64)}}
	if !reflect.DeepEqual(j, want) {
		t.Errorf("got %+v, want %+v", j, want)
	}
	for _, bad := range []string{"", "kubectl get ns", "kubeadm join 1.2.3.4:6443", "kubeadm join 1.2.3.4:6443 --token a.b"} {
		if _, err := ParseJoin(bad); err == nil {
			t.Errorf("ParseJoin(%q) accepted it", bad)
		}
	}
}

func TestJoinConfiguration(t *testing.T) {
	c := Config{Index: 3, Dir: "/state/workers/worker-3"}
	c.Defaults()
	j, _ := ParseJoin(joinLine)
	var got struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Discovery  struct {
			BootstrapToken struct {
				APIServerEndpoint string   `json:"apiServerEndpoint"`
				Token             string   `json:"token"`
				CACertHashes      []string `json:"caCertHashes"`
			} `json:"bootstrapToken"`
		} `json:"discovery"`
		NodeRegistration struct {
			Name                  string   `json:"name"`
			CRISocket             string   `json:"criSocket"`
			IgnorePreflightErrors []string `json:"ignorePreflightErrors"`
			KubeletExtraArgs      []struct{ Name, Value string }
		} `json:"nodeRegistration"`
		Patches struct{ Directory string } `json:"patches"`
	}
	if err := yaml.UnmarshalStrict([]byte(c.JoinConfiguration(j)), &got); err != nil {
		t.Fatalf("%v\n%s", err, c.JoinConfiguration(j))
	}
	bt := got.Discovery.BootstrapToken
	if got.APIVersion != "kubeadm.k8s.io/v1beta4" || got.Kind != "JoinConfiguration" || bt.APIServerEndpoint != j.Endpoint || bt.Token != j.Token ||
		!reflect.DeepEqual(bt.CACertHashes, j.CACertHashes) {
		t.Errorf("discovery %+v", got)
	}
	nr := got.NodeRegistration
	if nr.Name != "worker-3" || nr.CRISocket != "unix:///run/containerd/containerd.sock" || len(nr.KubeletExtraArgs) != 1 ||
		nr.KubeletExtraArgs[0].Name != "node-ip" || nr.KubeletExtraArgs[0].Value != "10.246.3.2" {
		t.Errorf("nodeRegistration %+v", nr)
	}
	if got.Patches.Directory != "/state/workers/worker-3/patches" {
		t.Errorf("patches %q", got.Patches.Directory)
	}
}

func TestKubeletArgs(t *testing.T) {
	env := `KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock --node-ip=10.246.0.2"` + "\n"
	got := KubeletArgs(env)
	want := []string{
		"--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf", "--kubeconfig=/etc/kubernetes/kubelet.conf",
		"--config=/var/lib/kubelet/config.yaml", "--container-runtime-endpoint=unix:///run/containerd/containerd.sock", "--node-ip=10.246.0.2",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q", got)
	}
}

func TestNames(t *testing.T) {
	c := Config{Index: 12}
	c.Defaults()
	for got, want := range map[string]string{
		c.Name: "worker-12", c.NetNS(): "kamaji-worker-12", c.HostVeth(): "kwrk12-h", c.NodeVeth(): "kwrk12-n",
		c.HostIP(): "10.246.12.1", c.NodeIP(): "10.246.12.2", c.Subnet(): "10.246.12.0/30", c.Cgroup(): "/kamaji-worker-12",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	// Interface names are at most 15 bytes.
	c.Index = 199
	if len(c.HostVeth()) > 15 {
		t.Errorf("%s is too long for a link name", c.HostVeth())
	}
	seen := map[string]string{}
	for _, p := range HostPaths {
		d := c.hostPathDir(p)
		if other, ok := seen[d]; ok {
			t.Errorf("%s and %s share %s", p, other, d)
		}
		seen[d] = p
	}
}

func TestCNIConfig(t *testing.T) {
	var conf struct {
		Plugins []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(Config{}.CNIConfig("10.36.1.0/24")), &conf); err != nil {
		t.Fatal(err)
	}
	b := conf.Plugins[0]
	if b["type"] != "bridge" || b["ipMasq"] != true {
		t.Errorf("bridge %v", b)
	}
	ranges := b["ipam"].(map[string]any)["ranges"].([]any)[0].([]any)[0].(map[string]any)
	if ranges["subnet"] != "10.36.1.0/24" {
		t.Errorf("ranges %v", ranges)
	}
}

// The registry serves what BuildImages wrote, as containerd asks for it through a mirror.
func TestRegistryServesBuiltImages(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "pause-bin")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	reg := filepath.Join(dir, "registry")
	img := PauseImage(bin)
	img.Files = append(img.Files, File{Path: "etc/motd", Body: []byte("hi\n")}, File{Path: "bin/sh", Link: "/pause"})
	digests, err := BuildImages(reg, []Image{img})
	if err != nil {
		t.Fatal(err)
	}
	again, err := BuildImages(reg, []Image{img})
	if err != nil || again[SandboxImage] != digests[SandboxImage] {
		t.Errorf("a second build gave %v (%v), want the same digest %s", again, err, digests[SandboxImage])
	}
	srv := httptest.NewServer(Registry{Dir: reg})
	defer srv.Close()
	get := func(method, path string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	if resp, _ := get("GET", "/v2/"); resp.StatusCode != 200 {
		t.Errorf("/v2/: %s", resp.Status)
	}
	resp, body := get("GET", "/v2/pause/manifests/3.10.2?ns=registry.k8s.io")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != mediaManifest || resp.Header.Get("Docker-Content-Digest") != digests[SandboxImage] {
		t.Fatalf("manifest: %s %v", resp.Status, resp.Header)
	}
	if digestOf(body) != digests[SandboxImage] {
		t.Errorf("manifest body digest %s", digestOf(body))
	}
	if resp, _ := get("HEAD", "/v2/pause/manifests/"+digests[SandboxImage]+"?ns=registry.k8s.io"); resp.StatusCode != 200 {
		t.Errorf("HEAD by digest: %s", resp.Status)
	}
	for _, path := range []string{"/v2/pause/manifests/3.10.2?ns=docker.io", "/v2/library/nginx/manifests/latest?ns=docker.io", "/v2/pause/manifests/9.9"} {
		resp, body := get("GET", path)
		if resp.StatusCode != 404 || !strings.Contains(string(body), "MANIFEST_UNKNOWN") {
			t.Errorf("%s: %s %s", path, resp.Status, body)
		}
	}
	var m struct {
		Config Descriptor
		Layers []Descriptor
	}
	if err := json.Unmarshal(body, &m); err != nil || len(m.Layers) != 1 {
		t.Fatalf("manifest %s: %v", body, err)
	}
	resp, cfg := get("GET", "/v2/pause/blobs/"+m.Config.Digest)
	if resp.StatusCode != 200 || digestOf(cfg) != m.Config.Digest {
		t.Fatalf("config blob: %s", resp.Status)
	}
	var config struct {
		Config struct{ Entrypoint []string }
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(cfg, &config); err != nil || !reflect.DeepEqual(config.Config.Entrypoint, []string{"/pause"}) {
		t.Errorf("config %s: %v", cfg, err)
	}
	resp, layer := get("GET", "/v2/pause/blobs/"+m.Layers[0].Digest)
	if resp.StatusCode != 200 || digestOf(layer) != m.Layers[0].Digest {
		t.Fatalf("layer blob: %s", resp.Status)
	}
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	sum := sha256.Sum256(raw)
	if "sha256:"+hex.EncodeToString(sum[:]) != config.RootFS.DiffIDs[0] {
		t.Errorf("diff id %v does not match the layer", config.RootFS.DiffIDs)
	}
	var entries []string
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		entries = append(entries, h.Name+":"+string(h.Typeflag)+":"+h.Linkname)
	}
	want := []string{"bin/:5:", "bin/sh:2:/pause", "etc/:5:", "etc/motd:0:", "pause:0:"}
	if !reflect.DeepEqual(entries, want) {
		t.Errorf("layer entries %q, want %q", entries, want)
	}
	if resp, _ := get("GET", "/v2/pause/blobs/sha256:"+strings.Repeat("0", 64)); resp.StatusCode != 404 {
		t.Errorf("unknown blob: %s", resp.Status)
	}
	if resp, _ := get("PUT", "/v2/pause/manifests/x"); resp.StatusCode != 405 {
		t.Errorf("PUT: %s", resp.Status)
	}
}

// kube-proxy's image carries iptables with its extensions and every library they load, under
// the names kube-proxy runs. Any dynamically linked program and library stand in for Debian's
// iptables here, so the test needs no iptables on the host.
func TestIptablesFilesCarryTheirLibraries(t *testing.T) {
	multi, err := filepath.EvalSymlinks("/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	libs, err := hostLibraries(multi)
	if err != nil {
		t.Fatal(err)
	}
	var libc string
	for _, l := range libs {
		if strings.Contains(filepath.Base(l), "libc.so") {
			libc = l
		}
	}
	if libc == "" {
		t.Fatalf("ldd %s lists no libc: %v", multi, libs)
	}
	// An "extension" folder holding one shared library.
	extDir := t.TempDir()
	ext := filepath.Join(extDir, "libxt_test.so")
	data, err := os.ReadFile(libc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ext, data, 0o755); err != nil {
		t.Fatal(err)
	}
	files, err := iptablesFiles(multi, extDir)
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]File{}
	for _, f := range files {
		paths[strings.TrimPrefix(f.Path, "/")] = f
	}
	dir := strings.TrimPrefix(filepath.Dir(multi), "/")
	for _, n := range []string{"iptables", "iptables-restore", "ip6tables-save"} {
		if f, ok := paths[dir+"/"+n]; !ok || f.Link != filepath.Base(multi) {
			t.Errorf("%s/%s: %+v, want a link to %s", dir, n, f, filepath.Base(multi))
		}
	}
	extLibs, err := hostLibraries(ext)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range append(append([]string{multi, ext}, libs...), extLibs...) {
		if f, ok := paths[strings.TrimPrefix(want, "/")]; !ok || f.From != want {
			t.Errorf("%s is not in the image (%+v)", want, f)
		}
	}
	if _, err := layerTar(files); err != nil {
		t.Errorf("layer: %v", err)
	}
	if _, err := iptablesFiles(multi, t.TempDir()); err == nil || !strings.Contains(err.Error(), "no iptables extensions") {
		t.Errorf("an empty extension folder: %v", err)
	}
}
