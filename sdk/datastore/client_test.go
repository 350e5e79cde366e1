package datastore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/addon"
	"github.com/openhcp/kamaji/sdk/datastore"
	"github.com/openhcp/kamaji/sdk/internal/fake"
	"github.com/openhcp/kamaji/sdk/internal/testutil"
)

// The test plugin is built once for the package: linking a gRPC binary is the slow part.
var pluginPath, pluginSum string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sdk-datastore-test")
	if err != nil {
		panic(err)
	}
	tb := &mainTB{}
	pluginPath, pluginSum = testutil.BuildPlugin(tb, dir, "github.com/openhcp/kamaji/sdk/internal/testplugin")
	code := m.Run()
	sdk.KillPlugins()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// mainTB lets TestMain use test helpers; a failure there aborts the run.
type mainTB struct{ testing.TB }

func (*mainTB) Helper()                   {}
func (*mainTB) Fatal(args ...any)         { panic(fmt.Sprint(args...)) }
func (*mainTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

func start(t *testing.T, cfg sdk.ClientConfig) *datastore.Client {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = pluginPath
	}
	if cfg.SHA256 == "" {
		cfg.SHA256 = pluginSum
	}
	c, err := datastore.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var (
	cfg    = datastore.Config{Name: "test", Driver: "fake", Endpoints: []string{"fake:2379"}, Password: "hunter2"}
	tenant = datastore.Tenant{Namespace: "ns", Name: "a", Schema: "ns_a", Username: "ns_a"}
)

func TestHandshakeAndCalls(t *testing.T) {
	c := start(t, sdk.ClientConfig{})
	ctx := t.Context()
	if got := c.ProtocolVersion(); got != sdk.ProtocolVersion {
		t.Errorf("negotiated protocol version %d, want %d", got, sdk.ProtocolVersion)
	}
	info, err := c.GetPluginInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (datastore.PluginInfo{Name: "fake", VendorVersion: "0.0.1", Drivers: []string{"fake"}}); !reflect.DeepEqual(info, want) {
		t.Errorf("GetPluginInfo = %+v, want %+v", info, want)
	}
	caps, err := c.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(caps) != 3 || caps[2] != datastore.CapabilityExportImport || caps[2].String() != "EXPORT_IMPORT" {
		t.Errorf("Capabilities = %v", caps)
	}
	if p, err := c.Probe(ctx); err != nil || !p.Ready || p.Message != "mtls=true" {
		t.Errorf("Probe = %+v, %v", p, err)
	}
	if err := c.ValidateConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	conn, err := c.EnsureTenant(ctx, cfg, tenant)
	if err != nil {
		t.Fatal(err)
	}
	if conn.Etcd == nil || conn.Etcd.Prefix != "/ns_a/" || conn.Etcd.ClientCertificate.CommonName != "ns_a" {
		t.Errorf("EnsureTenant = %+v", conn)
	}
	if err := c.DeleteTenant(ctx, cfg, tenant); err != nil {
		t.Fatal(err)
	}
}

// TestExportImportStream pipes an export into an import across two plugin processes, the way
// the core migrates a tenant between datastores.
func TestExportImportStream(t *testing.T) {
	src, dst := start(t, sdk.ClientConfig{}), start(t, sdk.ClientConfig{})
	ctx := t.Context()
	want := map[string]string{}
	var kvs []datastore.KeyValue
	for i := range 5 {
		k, v := fmt.Sprintf("k%d", i), fmt.Sprintf("v%d\x00", i)
		want[k] = v
		kvs = append(kvs, datastore.KeyValue{Key: []byte(k), Value: []byte(v)})
	}
	one := func(yield func([]datastore.KeyValue, error) bool) { yield(kvs, nil) }
	if res, err := src.Import(ctx, cfg, tenant, one); err != nil || res.Keys != 5 {
		t.Fatalf("Import = %+v, %v", res, err)
	}
	res, err := dst.Import(ctx, cfg, tenant, src.Export(ctx, cfg, tenant))
	if err != nil || res.Keys != 5 {
		t.Fatalf("Import(Export) = %+v, %v", res, err)
	}
	got := map[string]string{}
	chunks := 0
	for kvs, err := range dst.Export(ctx, cfg, tenant) {
		if err != nil {
			t.Fatal(err)
		}
		chunks++
		for _, kv := range kvs {
			got[string(kv.Key)] = string(kv.Value)
		}
	}
	if !reflect.DeepEqual(got, want) || chunks != 3 {
		t.Errorf("exported %v in %d chunks, want %v in 3", got, chunks, want)
	}
}

func TestImportSourceError(t *testing.T) {
	c := start(t, sdk.ClientConfig{})
	boom := errors.New("source broke")
	_, err := c.Import(t.Context(), cfg, tenant, func(yield func([]datastore.KeyValue, error) bool) {
		if yield([]datastore.KeyValue{{Key: []byte("k"), Value: []byte("v")}}, nil) {
			yield(nil, boom)
		}
	})
	if !errors.Is(err, boom) {
		t.Errorf("Import = %v, want the source's error", err)
	}
}

func TestUnimplementedIsTyped(t *testing.T) {
	c := start(t, sdk.ClientConfig{})
	_, err := c.GetUsage(t.Context(), cfg, []datastore.Tenant{tenant})
	if !errors.Is(err, datastore.ErrUnimplemented) {
		t.Fatalf("GetUsage = %v, want ErrUnimplemented", err)
	}
	if status.Code(err) == codes.OK {
		t.Errorf("the gRPC code is lost: %v", err)
	}
}

func TestInvalidArgumentNamesField(t *testing.T) {
	c := start(t, sdk.ClientConfig{})
	err := c.ValidateConfig(t.Context(), datastore.Config{Driver: "fake"})
	var fe *sdk.FieldError
	if !errors.As(err, &fe) || fe.Field != "endpoints" {
		t.Fatalf("ValidateConfig = %v, want a FieldError on endpoints", err)
	}
	if !strings.Contains(err.Error(), "endpoints: at least one endpoint") {
		t.Errorf("message %q does not start with the field", err)
	}
	_, err = c.EnsureTenant(t.Context(), cfg, datastore.Tenant{Name: "x"})
	if !errors.As(err, &fe) || fe.Field != "tenant.schema" {
		t.Errorf("EnsureTenant = %v, want a FieldError on tenant.schema", err)
	}
}

func TestDefaultDeadline(t *testing.T) {
	c := start(t, sdk.ClientConfig{CallTimeout: 100 * time.Millisecond})
	blocking := cfg
	blocking.Parameters = map[string]string{"block": "true"}
	// context.Background has no deadline: the client must add one rather than hang.
	err := c.ValidateConfig(context.Background(), blocking)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("ValidateConfig = %v, want DeadlineExceeded", err)
	}
}

func TestWrongSHA256(t *testing.T) {
	wrong := strings.Repeat("0", 64)
	_, err := datastore.NewClient(sdk.ClientConfig{Path: pluginPath, SHA256: wrong})
	if err == nil {
		t.Fatal("a binary with another checksum was started")
	}
	t.Log(err)
	for _, want := range []string{"sha256 mismatch", wrong, pluginSum} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := datastore.NewClient(sdk.ClientConfig{Path: pluginPath}); err == nil || !strings.Contains(err.Error(), "sha256 is required") {
		t.Errorf("no checksum: %v", err)
	}
	if _, err := datastore.NewClient(sdk.ClientConfig{Path: pluginPath, SHA256: "xyz"}); err == nil || !strings.Contains(err.Error(), "not a hex-encoded SHA-256") {
		t.Errorf("bad checksum: %v", err)
	}
}

func TestUnknownProtocolVersion(t *testing.T) {
	_, err := datastore.NewClient(sdk.ClientConfig{Path: pluginPath, SHA256: pluginSum, Args: []string{"-protocol", "99"}})
	if err == nil {
		t.Fatal("a plugin speaking protocol 99 was accepted")
	}
	t.Log(err)
	for _, want := range []string{"transport protocol version mismatch", "Plugin version: 99"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestWrongContract(t *testing.T) {
	_, err := addon.NewClient(sdk.ClientConfig{Path: pluginPath, SHA256: pluginSum})
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "does not serve the addon contract") {
		t.Errorf("addon client on a datastore plugin: %v", err)
	}
}

func TestCloseStopsProcess(t *testing.T) {
	c := start(t, sdk.ClientConfig{})
	if c.Exited() {
		t.Fatal("exited before Close")
	}
	_ = c.Close()
	if !c.Exited() {
		t.Error("still running after Close")
	}
}

// A crashed plugin is seen as exited and its calls fail, rather than hang: the host restarts it.
func TestCrashIsVisible(t *testing.T) {
	c := start(t, sdk.ClientConfig{CallTimeout: 10 * time.Second})
	proc, err := os.FindProcess(c.Pid())
	if err != nil || c.Pid() == 0 {
		t.Fatalf("plugin pid %d: %v", c.Pid(), err)
	}
	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !c.Exited() {
		if time.Now().After(deadline) {
			t.Fatal("the host never noticed the plugin died")
		}
		<-time.After(10 * time.Millisecond) // polling, bounded by the deadline above
	}
	if _, err := c.GetPluginInfo(context.Background()); status.Code(err) != codes.Unavailable && status.Code(err) != codes.Canceled {
		t.Errorf("call to a dead plugin = %v, want Unavailable", err)
	}
}

// The in-process path: the same interface without transport, e.g. for a benchmark.
func TestInProcess(t *testing.T) {
	var p datastore.Plugin = fake.NewDatastore()
	if _, err := p.GetUsage(t.Context(), cfg, nil); !errors.Is(err, datastore.ErrUnimplemented) {
		t.Errorf("GetUsage = %v", err)
	}
}

func BenchmarkEnsureTenant(b *testing.B) {
	remote, err := datastore.NewClient(sdk.ClientConfig{Path: pluginPath, SHA256: pluginSum})
	if err != nil {
		b.Fatal(err)
	}
	defer remote.Close()
	for name, p := range map[string]datastore.Plugin{"direct": fake.NewDatastore(), "plugin": remote} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := p.EnsureTenant(context.Background(), cfg, tenant); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A plugin that quotes its DSN and keys in its errors must not publish them: the host scrubs
// every secret value it sent, in every form a DSN gives it, and keeps the error's meaning.
func TestErrorsAreScrubbedOfTheSecretsSent(t *testing.T) {
	c := start(t, sdk.ClientConfig{Args: []string{"-echo-secrets"}})
	cfg := datastore.Config{
		Driver: "fake", Endpoints: []string{"db:5432"}, Username: "admin", Password: "s3cr3t/p@ss word+%",
		ClientKey: []byte("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBeFy0u1oZ8cAmyCMLOeZLBOiSLRxU2pdz3Ykqlbd+cToAoGCCqGSM49\n-----END EC PRIVATE KEY-----\n"),
	}
	tenant := datastore.Tenant{Namespace: "ns", Name: "a", Schema: "t_a", Username: "t_a", UID: "u1"}
	ctx := context.Background()
	leaks := func(call string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: want the plugin's error", call)
		}
		msg := err.Error()
		for _, secret := range []string{cfg.Password, "s3cr3t%2Fp%40ss+word%2B%25", "MHcCAQEEIBeFy0u1oZ8cAmyCMLOeZLBOiSLRxU2pdz3Ykqlbd+cToAoGCCqGSM49"} {
			if strings.Contains(msg, secret) {
				t.Errorf("%s: the error publishes a secret: %s", call, msg)
			}
		}
		if !strings.Contains(msg, datastore.Redacted) || !strings.Contains(msg, "postgres://admin:") {
			t.Errorf("%s: the rest of the message should stay readable: %s", call, msg)
		}
	}
	err := c.ValidateConfig(ctx, cfg)
	leaks("ValidateConfig", err)
	var fe *sdk.FieldError
	if !errors.As(err, &fe) || fe.Field != "endpoints" || strings.Contains(fe.Message, cfg.Password) {
		t.Errorf("ValidateConfig: the field error is lost or still holds the password: %#v", fe)
	}
	_, err = c.EnsureTenant(ctx, cfg, tenant)
	leaks("EnsureTenant", err)
	err = c.DeleteTenant(ctx, cfg, tenant)
	leaks("DeleteTenant", err)
	var oe *sdk.OwnedError
	if !errors.As(err, &oe) || !strings.Contains(oe.Message, "owned") {
		t.Errorf("DeleteTenant: ALREADY_EXISTS should come back as an *sdk.OwnedError: %v", err)
	}
}

func TestRedactLeavesShortValuesAndNilAlone(t *testing.T) {
	if datastore.Redact(nil, datastore.Config{Password: "secret"}) != nil {
		t.Error("nil must stay nil")
	}
	err := errors.New("user abc failed")
	if got := datastore.Redact(err, datastore.Config{Password: "abc"}); got != err {
		t.Errorf("a 3-character password must not blank every %q: %v", "abc", got)
	}
}
