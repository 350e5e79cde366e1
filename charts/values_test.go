package charts_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	sigsyaml "sigs.k8s.io/yaml"
)

// Bad values stop `helm template`/`install` with one message naming the value.
func TestBadValuesAreRefusedNamingTheValue(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	for name, tc := range map[string]struct {
		set  []string
		want string
	}{
		"unknown delivery":       {[]string{"pluginDelivery=copy"}, `pluginDelivery: "copy" is not auto, imageVolume or initContainer`},
		"chart-set flag":         {[]string{"config.pod-namespace=elsewhere"}, "config.pod-namespace: set by the chart"},
		"probes off":             {[]string{"healthProbeBindAddress=0"}, "healthProbeBindAddress: the probes need it"},
		"unknown bundled plugin": {[]string{"bundledPlugins.datastore-tikv.enabled=true"}, "bundledPlugins.datastore-tikv: not a plugin this chart ships"},
		"bundled image without sha256": {[]string{"bundledPlugins.datastore-etcd.image=mirror.example/etcd:1", "bundledPlugins.datastore-etcd.sha256="},
			"bundledPlugins.datastore-etcd.sha256: required with bundledPlugins.datastore-etcd.image"},
		"plugin without sha256": {[]string{"plugins[0].kind=datastore", "plugins[0].name=x", "plugins[0].image=r/x:1", "plugins[0].drivers[0]=X"},
			"plugins[0].sha256: required (the sha256sum of the plugin binary for linux/amd64)"},
		"plugin with a short sha256": {[]string{"plugins[0].kind=datastore", "plugins[0].name=x", "plugins[0].image=r/x:1", "plugins[0].drivers[0]=X", "plugins[0].sha256=abc"},
			`plugins[0].sha256: "abc" is not the 64 hex digits of a sha256`},
		"plugin of no kind": {[]string{"plugins[0].kind=storage", "plugins[0].name=x", "plugins[0].image=r/x:1", "plugins[0].sha256=" + sha},
			`plugins[0].kind: "storage" is not datastore or addon`},
		"datastore plugin without drivers": {[]string{"plugins[0].kind=datastore", "plugins[0].name=x", "plugins[0].image=r/x:1", "plugins[0].sha256=" + sha},
			"plugins[0].drivers: a datastore plugin lists the DataStore drivers it serves"},
		"plugin named as a bundled one": {[]string{"plugins[0].kind=addon", "plugins[0].name=addon-coredns", "plugins[0].image=r/x:1", "plugins[0].sha256=" + sha, "plugins[0].addons[0]=coredns"},
			`plugins[0].name: "addon-coredns" is already a plugin's name (bundledPlugins)`},
		"plugin name unfit for a volume": {[]string{"plugins[0].kind=addon", "plugins[0].name=My_Plugin", "plugins[0].image=r/x:1", "plugins[0].sha256=" + sha, "plugins[0].addons[0]=x"},
			`plugins[0].name: "My_Plugin" must be lower-case letters, digits and '-'`},
		"plugin binary not absolute": {[]string{"plugins[0].kind=addon", "plugins[0].name=x", "plugins[0].image=r/x:1", "plugins[0].sha256=" + sha, "plugins[0].addons[0]=x", "plugins[0].binary=bin/x"},
			`plugins[0].binary: "bin/x" is not an absolute path in the image`},
		"datastore without spec":          {[]string{"datastores[0].name=default"}, "datastores[0].spec: required"},
		"service monitor without metrics": {[]string{"serviceMonitor.enabled=true", "metricsBindAddress=0"}, "serviceMonitor.enabled: the metrics endpoint is off"},
		"shutdown delay not a duration":   {[]string{"config.shutdown-delay=10"}, `config.shutdown-delay: "10" is not a duration such as 10s or 1m30s`},
		"grace period shorter than the delay": {[]string{"config.shutdown-delay=30s", "terminationGracePeriodSeconds=30"},
			"terminationGracePeriodSeconds: 30 is less than config.shutdown-delay (30s) plus 10 s"},
		"chart-set flag in extraArgs": {[]string{"extraArgs[0]=--leader-elect", "extraArgs[1]=--metrics-bind-address=:9090"}, "extraArgs[1]: metrics-bind-address is set by the chart"},
		"shutdown delay in extraArgs": {[]string{"extraArgs[0]=--shutdown-delay", "extraArgs[1]=30s"}, "extraArgs[0]: set shutdown-delay with config.shutdown-delay, which the pod's ports and grace period follow"},
		"webhook port in extraArgs":   {[]string{"extraArgs[0]=-webhook-port=9444"}, "extraArgs[0]: set webhook-port with config.webhook-port"},
		"shutdown delay in extraEnv":  {[]string{"extraEnv[0].name=KAMAJI_SHUTDOWN_DELAY", "extraEnv[0].value=30s"}, "extraEnv[0]: set shutdown-delay with config.shutdown-delay"},
		"chart-set flag in extraEnv":  {[]string{"extraEnv[0].name=GOGC", "extraEnv[0].value=25", "extraEnv[1].name=KAMAJI_POD_NAMESPACE", "extraEnv[1].value=x"}, "extraEnv[1]: pod-namespace is set by the chart"},
		"grace period not a number":   {[]string{"terminationGracePeriodSeconds=half-a-minute"}, `terminationGracePeriodSeconds: "half-a-minute" is not a number of seconds`},
	} {
		t.Run(name, func(t *testing.T) {
			args := []string{"--values", "testdata/values/digests.yaml"}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			_, err := render(t, "./kamaji", args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
	t.Run("unquoted numeric sha256", func(t *testing.T) {
		values := filepath.Join(t.TempDir(), "v.yaml")
		body := "plugins:\n- {kind: addon, name: x, image: r/x:1, addons: [x], sha256: " + strings.Repeat("1", 64) + "}\n"
		if err := os.WriteFile(values, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := render(t, "./kamaji", "--values", "testdata/values/digests.yaml", "--values", values)
		if err == nil || !strings.Contains(err.Error(), "plugins[0].sha256: quote it") {
			t.Fatalf("got %v, want plugins[0].sha256: quote it", err)
		}
	})
}

// The manager pod's termination grace period leaves the shutdown delay and the 10 s after it
// their time: unset, it is the delay, rounded up, plus 20 s.
func TestTerminationGracePeriodFollowsTheShutdownDelay(t *testing.T) {
	for _, tc := range []struct {
		set  []string
		want int64
	}{
		{nil, 30},
		{[]string{"config.shutdown-delay=0"}, 20},
		{[]string{"config.shutdown-delay=1m30.5s"}, 111},
		{[]string{"config.shutdown-delay=1500ms"}, 22},
		{[]string{"config.shutdown-delay=3000ms"}, 23},
		{[]string{"config.shutdown-delay=45s", "terminationGracePeriodSeconds=55"}, 55},
	} {
		t.Run(strings.Join(tc.set, ","), func(t *testing.T) {
			args := []string{"--values", "testdata/values/digests.yaml"}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := render(t, "./kamaji", args...)
			if err != nil {
				t.Fatal(err)
			}
			got := deployment(t, out).Spec.Template.Spec.TerminationGracePeriodSeconds
			if got == nil || *got != tc.want {
				t.Fatalf("terminationGracePeriodSeconds %v, want %d", got, tc.want)
			}
		})
	}
}

// copyChart copies charts/kamaji into a temporary folder, to render it with another
// files/plugin-digests.yaml.
func copyChart(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "kamaji")
	err := filepath.Walk("kamaji", func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("kamaji", p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// The bundled plugins are pinned with the digests `make chart-digests` records, for the
// architecture of the nodes; without one the render fails naming the plugin and the fix.
func TestBundledPluginsArePinnedByTheRecordedDigests(t *testing.T) {
	chart := copyChart(t)
	digests := filepath.Join(chart, "files", "plugin-digests.yaml")
	var b strings.Builder
	sums := map[string]map[string]string{}
	for i, p := range []string{"datastore-etcd", "datastore-mysql", "datastore-postgres", "datastore-nats", "addon-coredns", "addon-kubeproxy", "addon-konnectivity"} {
		ver, err := os.ReadFile(filepath.Join("..", "plugins", p, "VERSION"))
		if err != nil {
			t.Fatal(err)
		}
		key := "kamaji-" + p + ":" + strings.TrimSpace(string(ver))
		sums[p] = map[string]string{"amd64": strings.Repeat("abcdef9"[i:i+1], 64), "arm64": strings.Repeat("0123456"[i:i+1], 64)}
		b.WriteString("\"" + key + "\":\n  linux/amd64: \"" + sums[p]["amd64"] + "\"\n  linux/arm64: \"" + sums[p]["arm64"] + "\"\n")
	}
	if err := os.WriteFile(digests, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			out, err := render(t, chart, "--set", "arch="+arch)
			if err != nil {
				t.Fatal(err)
			}
			conf := struct {
				Plugins []struct{ Name, SHA256 string } `json:"plugins"`
			}{}
			if err := sigsyaml.Unmarshal([]byte(kamajiYAML(t, out)), &conf); err != nil {
				t.Fatal(err)
			}
			if len(conf.Plugins) != len(sums) {
				t.Fatalf("%d plugins configured, want %d", len(conf.Plugins), len(sums))
			}
			for _, p := range conf.Plugins {
				if p.SHA256 != sums[p.Name][arch] {
					t.Errorf("plugin %s pinned by %s, want the %s digest %s", p.Name, p.SHA256, arch, sums[p.Name][arch])
				}
			}
			if sel := deployment(t, out).Spec.Template.Spec.NodeSelector["kubernetes.io/arch"]; sel != arch {
				t.Errorf("nodeSelector kubernetes.io/arch=%q, want %q", sel, arch)
			}
		})
	}
	t.Run("missing digest", func(t *testing.T) {
		_, err := render(t, chart, "--set", "arch=s390x")
		want := "bundledPlugins.addon-coredns: no sha256 recorded for kamaji-addon-coredns:"
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "on linux/s390x in files/plugin-digests.yaml: run `make images chart-digests`") {
			t.Fatalf("got %v, want an error with %q naming the platform and the fix", err, want)
		}
	})
	t.Run("plugin left out", func(t *testing.T) {
		args := []string{"--set", "arch=s390x"}
		for p := range sums {
			args = append(args, "--set", "bundledPlugins."+p+".enabled=false")
		}
		out, err := render(t, chart, args...)
		if err != nil {
			t.Fatalf("with every bundled plugin off, no digest is needed: %v", err)
		}
		if strings.Contains(kamajiYAML(t, out), "sha256") {
			t.Error("a plugin is configured although every bundled plugin is off")
		}
		pod := deployment(t, out).Spec.Template.Spec
		if len(pod.InitContainers) != 0 || volume(pod, "plugins") != nil {
			t.Error("plugin volumes or init containers without plugins")
		}
	})
}
