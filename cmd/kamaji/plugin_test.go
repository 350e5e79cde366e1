package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/openhcp/kamaji/core/settings"
	"github.com/openhcp/kamaji/core/testenv"
	"github.com/openhcp/kamaji/sdk/testkit"
)

// buildEtcdPlugin builds plugins/datastore-etcd on its own (GOWORK=off, as it is released).
func buildEtcdPlugin(t *testing.T) string {
	t.Helper()
	p, err := testenv.BuildPlugin(t.TempDir(), "datastore-etcd", settings.KindDataStore)
	if err != nil {
		t.Fatal(err)
	}
	return p.Path
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// indent makes a PEM a YAML block scalar body.
func indent(pem []byte) string {
	return "  " + strings.ReplaceAll(strings.TrimSpace(string(pem)), "\n", "\n  ") + "\n"
}

func wantOneLine(t *testing.T, out string, code int, want ...string) {
	t.Helper()
	if code == 0 {
		t.Fatalf("exit 0; want non-zero. output:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "kamaji: ") {
		t.Errorf("want one line starting with 'kamaji: ', got:\n%s", out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output %q does not contain %q", out, w)
		}
	}
}

func checkLine(status, name string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + status + `\s+` + regexp.QuoteMeta(name) + `\s`)
}

// TestPluginVerify runs `kamaji plugin verify` against the real etcd plugin and a real etcd.
func TestPluginVerify(t *testing.T) {
	bin := buildEtcdPlugin(t)
	etcd := testkit.StartEtcd(t)

	t.Run("PEM files", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "ca.crt", etcd.CACert)
		writeFile(t, dir, "ca.key", etcd.CAKey)
		crt := writeFile(t, dir, "root.crt", etcd.RootCert)
		key := writeFile(t, dir, "root.key", etcd.RootKey)
		// ca.* relative to the config file's folder, root.* absolute.
		cfg := writeFile(t, dir, "etcd.yaml", []byte("driver: etcd\n"+
			"endpoints: [\""+etcd.Endpoints[0]+"\"]\n"+
			"caCertFile: ca.crt\ncaKeyFile: ca.key\n"+
			"clientCertFile: "+crt+"\nclientKeyFile: "+key+"\n"))
		out, code := runKamaji(t, nil, "plugin", "verify", "--plugin", bin, "--config", cfg, "--namespace", "verify-files")
		if code != 0 {
			t.Fatalf("exit %d, want 0:\n%s", code, out)
		}
		for _, c := range []string{"start", "isolation", "export-import", "delete-tenant"} {
			if !checkLine("PASS", c).MatchString(out) {
				t.Errorf("check %s not listed as passed:\n%s", c, out)
			}
		}
		if !strings.Contains(out, "0 failed") || !strings.Contains(out, "plugin:       kamaji-datastore-etcd") {
			t.Errorf("summary missing:\n%s", out)
		}
	})

	t.Run("inline PEM and pinned sha256", func(t *testing.T) {
		sum := fileSHA256(t, bin)
		cfg := writeConfig(t, "name: inline\ndriver: etcd\nendpoints:\n- https://"+etcd.Endpoints[0]+"\n"+
			"caCert: |\n"+indent(etcd.CACert)+"caKey: |\n"+indent(etcd.CAKey)+
			"clientCert: |\n"+indent(etcd.RootCert)+"clientKey: |\n"+indent(etcd.RootKey))
		out, code := runKamaji(t, nil, "plugin", "verify", "--plugin", bin, "--config", cfg, "--sha256", strings.ToUpper(sum), "--timeout", "1m")
		if code != 0 {
			t.Fatalf("exit %d, want 0:\n%s", code, out)
		}
		for _, c := range []string{"isolation", "export-import"} {
			if !checkLine("PASS", c).MatchString(out) {
				t.Errorf("check %s not listed as passed:\n%s", c, out)
			}
		}
		if !strings.Contains(out, "sha256 "+sum) {
			t.Errorf("the start check does not show the pinned checksum:\n%s", out)
		}
	})

	t.Run("wrong sha256", func(t *testing.T) {
		cfg := writeConfig(t, "driver: etcd\nendpoints: [\""+etcd.Endpoints[0]+"\"]\n")
		out, code := runKamaji(t, nil, "plugin", "verify", "--plugin", bin, "--config", cfg, "--sha256", strings.Repeat("0", 64))
		if code != 1 || !checkLine("FAIL", "start").MatchString(out) {
			t.Fatalf("want exit 1 with start failed, got %d:\n%s", code, out)
		}
	})

	t.Run("dead endpoint", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "ca.crt", etcd.CACert)
		writeFile(t, dir, "ca.key", etcd.CAKey)
		writeFile(t, dir, "root.crt", etcd.RootCert)
		writeFile(t, dir, "root.key", etcd.RootKey)
		cfg := writeFile(t, dir, "dead.yaml", []byte("driver: etcd\nendpoints: [\"127.0.0.1:1\"]\n"+
			"caCertFile: ca.crt\ncaKeyFile: ca.key\nclientCertFile: root.crt\nclientKeyFile: root.key\n"))
		out, code := runKamaji(t, nil, "plugin", "verify", "--plugin", bin, "--config", cfg, "--timeout", "20s")
		if code != 1 {
			t.Fatalf("exit %d, want 1:\n%s", code, out)
		}
		if !checkLine("FAIL", "validate-config").MatchString(out) {
			t.Errorf("validate-config not listed as failed:\n%s", out)
		}
		if !checkLine("SKIP", "isolation").MatchString(out) {
			t.Errorf("isolation not listed as skipped:\n%s", out)
		}
		last := strings.Split(strings.TrimSpace(out), "\n")
		if !regexp.MustCompile(`^kamaji: \d+ of \d+ checks failed$`).MatchString(last[len(last)-1]) {
			t.Errorf("last line %q, want 'kamaji: N of M checks failed'", last[len(last)-1])
		}
	})
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("sha256sum", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))[0]
}

func TestPluginVerifyBadInput(t *testing.T) {
	dir := t.TempDir()
	plugin := writeFile(t, dir, "plugin", []byte("#!/bin/sh\nexit 1\n"))
	if err := os.Chmod(plugin, 0o755); err != nil {
		t.Fatal(err)
	}
	good := writeConfig(t, "driver: etcd\nendpoints: [\"127.0.0.1:2379\"]\n")
	missing := filepath.Join(dir, "no", "such-plugin")
	for name, tc := range map[string]struct {
		args []string
		want []string
	}{
		"missing plugin":    {[]string{"--plugin", missing, "--config", good}, []string{"plugin " + missing, "no such file"}},
		"plugin is a dir":   {[]string{"--plugin", dir, "--config", good}, []string{"is a directory"}},
		"no flags":          {nil, []string{`"plugin"`}},
		"no config":         {[]string{"--plugin", plugin}, []string{"config: required with --kind datastore"}},
		"unknown kind":      {[]string{"--plugin", plugin, "--kind", "cache"}, []string{`kind: want datastore or addon, got "cache"`}},
		"addon with config": {[]string{"--plugin", plugin, "--kind", "addon", "--config", good}, []string{"config: an addon plugin is verified without a datastore"}},
		"bad sha256":        {[]string{"--plugin", plugin, "--config", good, "--sha256", "abc"}, []string{"sha256: want 64 hex digits"}},
		"missing config":    {[]string{"--plugin", plugin, "--config", filepath.Join(dir, "nope.yaml")}, []string{"config file", "nope.yaml", "no such file"}},
		"unknown key":       {[]string{"--plugin", plugin, "--config", writeConfig(t, "driver: etcd\nendpoints: [a:1]\ncaCertPath: /x\n")}, []string{`unknown key "caCertPath"`}},
		"no driver":         {[]string{"--plugin", plugin, "--config", writeConfig(t, "endpoints: [a:1]\n")}, []string{"driver: required"}},
		"no endpoints":      {[]string{"--plugin", plugin, "--config", writeConfig(t, "driver: etcd\n")}, []string{"endpoints: required"}},
		"inline and file":   {[]string{"--plugin", plugin, "--config", writeConfig(t, "driver: etcd\nendpoints: [a:1]\ncaCert: x\ncaCertFile: y\n")}, []string{"caCert and caCertFile are both set"}},
		"path given inline": {[]string{"--plugin", plugin, "--config", writeConfig(t, "driver: etcd\nendpoints: [a:1]\ncaCert: /etc/ca.crt\n")}, []string{"caCert: not PEM", "caCertFile"}},
		"missing PEM file":  {[]string{"--plugin", plugin, "--config", writeConfig(t, "driver: etcd\nendpoints: [a:1]\nclientKeyFile: /no/such.key\n")}, []string{"clientKeyFile", "/no/such.key"}},
		"broken yaml":       {[]string{"--plugin", plugin, "--config", writeConfig(t, "driver: [\n")}, []string{"config file", "not a YAML mapping"}},
		"bad parameter":     {[]string{"--plugin", plugin, "--config", writeConfig(t, "driver: etcd\nendpoints: [a:1]\nparameters: {a: [1]}\n")}, []string{"parameters.a"}},
	} {
		t.Run(name, func(t *testing.T) {
			out, code := runKamaji(t, nil, append([]string{"plugin", "verify"}, tc.args...)...)
			wantOneLine(t, out, code, tc.want...)
		})
	}
}

func TestVerifyConfigFile(t *testing.T) {
	dir := t.TempDir()
	ca := testkit.NewCA(t)
	writeFile(t, dir, "ca.crt", ca.Cert)
	writeFile(t, dir, "pw", []byte("s3cret\n"))
	p := writeFile(t, dir, "c.yaml", []byte("driver: postgres\nendpoints: [db:5432]\ncaCertFile: ca.crt\n"+
		"username: kamaji\npasswordFile: pw\nparameters: {sslmode: require, port: 5432, ssl: true}\n"))
	cfg, err := loadVerifyConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "plugin-verify" || cfg.Driver != "postgres" || cfg.Endpoints[0] != "db:5432" ||
		string(cfg.CACert) != string(ca.Cert) || cfg.Username != "kamaji" || cfg.Password != "s3cret" {
		t.Errorf("config not read: %v", cfg)
	}
	if got := cfg.Parameters; got["sslmode"] != "require" || got["port"] != "5432" || got["ssl"] != "true" {
		t.Errorf("parameters = %v", got)
	}
}

// TestPluginVerifyAddon runs `kamaji plugin verify --kind addon` against the real CoreDNS addon
// plugin (every check passes) and against the etcd datastore plugin (refused as an addon).
func TestPluginVerifyAddon(t *testing.T) {
	coredns, err := testenv.BuildPlugin(t.TempDir(), "addon-coredns", settings.KindAddon)
	if err != nil {
		t.Fatal(err)
	}
	out, code := runKamaji(t, nil, "plugin", "verify", "--kind", "addon", "--plugin", coredns.Path)
	if code != 0 || !strings.Contains(out, "PASS") || strings.Contains(out, "FAIL") {
		t.Fatalf("exit %d; want every check to pass:\n%s", code, out)
	}
	out, code = runKamaji(t, nil, "plugin", "verify", "--kind", "addon", "--plugin", buildEtcdPlugin(t))
	if code == 0 || !strings.Contains(out, "FAIL") {
		t.Fatalf("a datastore plugin verified as an addon: exit %d\n%s", code, out)
	}
}
