package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets tests run this very binary as `kamaji` (KAMAJI_TEST_RUN_MAIN=1), so exit codes
// and output are checked as a user sees them, without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("KAMAJI_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runKamaji(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), append(env, "KAMAJI_TEST_RUN_MAIN=1", "KUBECONFIG=/nonexistent")...)
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kamaji.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadInputExitsWithOneLineNamingTheKey(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	for name, tc := range map[string]struct {
		env  []string
		args []string
		want string
	}{
		"flag below the 24h minimum": {nil, []string{"manager", "--certificate-expiration-deadline=1h"}, "certificate-expiration-deadline: 1h0m0s is less than the 24h minimum"},
		"unparsable flag":            {nil, []string{"manager", "--max-concurrent-tcp-reconciles=many"}, `invalid argument "many" for "--max-concurrent-tcp-reconciles"`},
		"negative start limit":       {nil, []string{"manager", "--max-starting-control-planes=-2"}, "max-starting-control-planes: must not be negative (0: no limit), got -2"},
		"bad env value":              {[]string{"KAMAJI_CONTROLLER_RECONCILE_TIMEOUT=soon"}, []string{"manager"}, `environment KAMAJI_CONTROLLER_RECONCILE_TIMEOUT: invalid value "soon"`},
		"bad file value": {nil, []string{"manager", "--config", writeConfig(t, "certificate-expiration-deadline: tomorrow\n")},
			`certificate-expiration-deadline: invalid value "tomorrow"`},
		"unknown file key":        {nil, []string{"manager", "--config", writeConfig(t, "datastores: x\n")}, `unknown key "datastores"`},
		"broken yaml":             {nil, []string{"manager", "--config", writeConfig(t, "a: [\n")}, "config file"},
		"missing explicit config": {nil, []string{"manager", "--config", "/nonexistent/kamaji.yaml"}, "config file /nonexistent/kamaji.yaml"},
		"bad plugin entry": {nil, []string{"manager", "--config", writeConfig(t, "plugins:\n- kind: datastore\n  name: etcd\n  path: /bin/true\n  sha256: nothex\n  drivers: [etcd]\n")},
			"plugins[0].sha256"},
		"unknown plugin field": {nil, []string{"manager", "--config", writeConfig(t, "plugins:\n- kind: datastore\n  name: etcd\n  path: /bin/true\n  sha: "+sha+"\n")},
			"plugins"},
		"bad zap log level flag": {nil, []string{"manager", "--zap-log-level=loud"}, `invalid argument "loud" for "--zap-log-level" flag: invalid log level "loud"`},
		"bad zap log level in the file": {nil, []string{"manager", "--config", writeConfig(t, "zap-log-level: loud\n")},
			`zap-log-level: invalid value "loud": invalid log level "loud"`},
		"bad zap encoder env":       {[]string{"KAMAJI_ZAP_ENCODER=yaml"}, []string{"manager"}, `environment KAMAJI_ZAP_ENCODER: invalid value "yaml": invalid encoder value "yaml"`},
		"bad zap stacktrace level":  {nil, []string{"manager", "--zap-stacktrace-level=debug"}, `"--zap-stacktrace-level" flag: invalid stacktrace level "debug"`},
		"bad zap time encoding":     {nil, []string{"manager", "--zap-time-encoding=sundial"}, `"--zap-time-encoding" flag: invalid time-encoding value "sundial"`},
		"bad zap devel in the file": {nil, []string{"manager", "--config", writeConfig(t, "zap-devel: sometimes\n")}, `zap-devel: invalid value "sometimes"`},
	} {
		t.Run(name, func(t *testing.T) {
			out, code := runKamaji(t, tc.env, tc.args...)
			if code == 0 {
				t.Fatalf("exit 0; want non-zero. output:\n%s", out)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "kamaji: ") {
				t.Errorf("want one line starting with 'kamaji: ', got:\n%s", out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output %q does not contain %q", out, tc.want)
			}
		})
	}
}

func TestPrecedenceFileEnvFlags(t *testing.T) {
	cfg := writeConfig(t, "datastore: from-file\nmax-concurrent-tcp-reconciles: 3\ncontroller-reconcile-timeout: 45s\n")
	cmd := newManagerCommand()
	t.Setenv("KAMAJI_MAX_CONCURRENT_TCP_RECONCILES", "5")
	if err := cmd.ParseFlags([]string{"--config", cfg, "--controller-reconcile-timeout=1m"}); err != nil {
		t.Fatal(err)
	}
	if _, err := applyConfig(cmd.Flags(), cfg, true); err != nil {
		t.Fatal(err)
	}
	get := func(name string) string { return cmd.Flags().Lookup(name).Value.String() }
	if got := get("datastore"); got != "from-file" {
		t.Errorf("file value lost: datastore=%s", got)
	}
	if got := get("max-concurrent-tcp-reconciles"); got != "5" {
		t.Errorf("env must override the file: %s", got)
	}
	if got := get("controller-reconcile-timeout"); got != (time.Minute).String() {
		t.Errorf("flag must override the file: %s", got)
	}
}

func TestPluginsFromFile(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	cfg := writeConfig(t, "plugins:\n- kind: datastore\n  name: etcd\n  path: /opt/kamaji/kamaji-datastore-etcd\n  sha256: "+sha+"\n  args: [--log-level=debug]\n  env: {GOMAXPROCS: \"1\"}\n  drivers: [etcd]\n")
	cmd := newManagerCommand()
	plugins, err := applyConfig(cmd.Flags(), cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(plugins) != 1 || plugins[0].Name != "etcd" || plugins[0].SHA256 != sha || plugins[0].Env["GOMAXPROCS"] != "1" || plugins[0].Drivers[0] != "etcd" {
		t.Fatalf("plugins not read: %+v", plugins)
	}
}

func TestTelemetryFlagIsAccepted(t *testing.T) {
	out, code := runKamaji(t, nil, "manager", "--disable-telemetry", "--leader-elect=false")
	// With no admin cluster the manager stops at the kubeconfig, after accepting every flag.
	if code == 0 || !strings.Contains(out, "no admin cluster") {
		t.Fatalf("want the kubeconfig error after flags are accepted, got %d: %s", code, out)
	}
}
