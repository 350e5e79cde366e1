package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/openhcp/kamaji/core/testenv"
)

// lockedBuffer collects a running process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func writeKubeconfig(t *testing.T, cfg *rest.Config, dir string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["plane"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts["plane"] = &clientcmdapi.Context{Cluster: "plane", AuthInfo: "admin"}
	kc.CurrentContext = "plane"
	p := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPprofIsDisabledByDefault(t *testing.T) {
	if got := newManagerCommand().Flags().Lookup("pprof-bind-address").DefValue; got != "0" {
		t.Errorf("--pprof-bind-address defaults to %q, want \"0\" (disabled)", got)
	}
}

// managerProcess is a `kamaji manager` process run against a plane.
type managerProcess struct {
	out *lockedBuffer
	// exited is closed once the process has exited, with its error in err: a channel read
	// once would leave the cleanup waiting forever after a wait that saw the exit.
	exited      chan struct{}
	err         error
	webhookAddr string
}

// startManager runs the built binary as `kamaji manager` against the plane, with its webhook
// server on a free loopback port, metrics and health probes off, and the flags flags returns
// (free gives it more free ports), and returns once the webhook server completes a TLS
// handshake. A port can be taken between its pick and the manager's bind (by another test
// package's server): the manager then exits with "address already in use" and is started again
// on other ports, flags called anew.
func startManager(ctx context.Context, t *testing.T, plane *testenv.Plane, env []string, flags func(free func() int) []string) *managerProcess {
	t.Helper()
	free := func() int {
		port, err := testenv.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return port
	}
	for attempt := 1; ; attempt++ {
		m := launchManager(t, plane, env, free(), flags(free))
		err := m.waitFor(ctx, func() bool {
			// A full handshake: a bare TCP connect makes the server log a handshake error.
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", m.webhookAddr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // loopback probe
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		if err == nil {
			return m
		}
		if attempt < 5 && m.hasExited() && strings.Contains(m.out.String(), "address already in use") {
			continue
		}
		t.Fatalf("%v before its webhook server answered:\n%s", err, m.out.String())
	}
}

// launchManager starts `kamaji manager` with its webhook server on port and args after the
// common flags; the test's cleanup kills it.
func launchManager(t *testing.T, plane *testenv.Plane, env []string, port int, args []string) *managerProcess {
	t.Helper()
	dir := t.TempDir()
	certDir := filepath.Join(dir, "webhook-certs")
	if err := plane.ServingCert(certDir); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"manager", "--metrics-bind-address=0", "--health-probe-bind-address=0", "--leader-elect=false",
		fmt.Sprintf("--webhook-port=%d", port), "--webhook-cert-dir=" + certDir}, args...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), append(env, "KAMAJI_TEST_RUN_MAIN=1", "KUBECONFIG="+writeKubeconfig(t, plane.Config, dir))...)
	cmd.Dir = dir
	m := &managerProcess{out: &lockedBuffer{}, exited: make(chan struct{}), webhookAddr: fmt.Sprintf("127.0.0.1:%d", port)}
	cmd.Stdout, cmd.Stderr = m.out, m.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { m.err = cmd.Wait(); close(m.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-m.exited
	})
	return m
}

func (m *managerProcess) hasExited() bool {
	select {
	case <-m.exited:
		return true
	default:
		return false
	}
}

// waitFor polls ok every 200ms until it holds; it fails if the manager exits or the context
// ends first.
func (m *managerProcess) waitFor(ctx context.Context, ok func() bool) error {
	for !ok() {
		select {
		case <-m.exited:
			return fmt.Errorf("the manager exited (%v)", m.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// mustWaitFor is waitFor, failing the test with the manager's output.
func (m *managerProcess) mustWaitFor(ctx context.Context, t *testing.T, what string, ok func() bool) {
	t.Helper()
	if err := m.waitFor(ctx, ok); err != nil {
		t.Fatalf("%v before %s:\n%s", err, what, m.out.String())
	}
}

// logEntries parses every output line as a JSON log entry.
func (m *managerProcess) logEntries(t *testing.T) []map[string]any {
	t.Helper()
	var entries []map[string]any
	sc := bufio.NewScanner(strings.NewReader(m.out.String()))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("not a JSON log line (--zap-encoder=json): %q", line)
		}
		entries = append(entries, entry)
	}
	return entries
}

// The manager, against a real apiserver, serves pprof where --pprof-bind-address says, and logs
// as controller-runtime's zap flags say, whether they come from the command line, kamaji.yaml or
// the environment.
func TestPprofAndLoggingFlagsTakeEffect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	plane, err := testenv.Start(ctx, testenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plane.Stop)
	if err := plane.InstallCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	get := func(url string) (int, string) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		return resp.StatusCode, body.String()
	}

	t.Run("pprof served, JSON encoder from the flag, epoch time from kamaji.yaml", func(t *testing.T) {
		config := writeConfig(t, "zap-time-encoding: epoch\n")
		var pprofAddr string
		m := startManager(ctx, t, plane, nil, func(free func() int) []string {
			pprofAddr = fmt.Sprintf("127.0.0.1:%d", free())
			return []string{"--config", config, "--pprof-bind-address=" + pprofAddr, "--zap-encoder=json"}
		})
		m.mustWaitFor(ctx, t, "pprof at "+pprofAddr, func() bool { code, _ := get("http://" + pprofAddr + "/debug/pprof/"); return code == http.StatusOK })
		if code, body := get("http://" + pprofAddr + "/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
			t.Fatalf("goroutine profile: %d %.200s", code, body)
		}
		entries := m.logEntries(t)
		if len(entries) == 0 {
			t.Fatal("the manager logged nothing")
		}
		for _, e := range entries {
			// controller-runtime's default is RFC 3339 (a string); epoch is a number.
			if _, ok := e["ts"].(float64); !ok {
				t.Fatalf("ts is not epoch seconds (zap-time-encoding: epoch): %v", e)
			}
		}
	})

	t.Run("level from the environment", func(t *testing.T) {
		// At level error, the manager's start (webhooks registered, controllers started: all
		// info) logs nothing.
		var metrics string
		m := startManager(ctx, t, plane, []string{"KAMAJI_ZAP_LOG_LEVEL=error"}, func(free func() int) []string {
			port := free()
			metrics = fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
			return []string{"--zap-encoder=json", fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", port)}
		})
		// The controllers start after the webhook server; each sets its worker gauge as it does.
		for _, c := range []string{"datastore", "tenantcontrolplane", "kubeconfiggenerator"} {
			series := `controller_runtime_active_workers{controller="` + c + `"}`
			m.mustWaitFor(ctx, t, "the "+c+" controller started", func() bool { _, body := get(metrics); return strings.Contains(body, series) })
		}
		for _, e := range m.logEntries(t) {
			if e["level"] == "info" || e["level"] == "debug" {
				t.Errorf("logged below error with KAMAJI_ZAP_LOG_LEVEL=error: %v", e)
			}
		}
	})
}
