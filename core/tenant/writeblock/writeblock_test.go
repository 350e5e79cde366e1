package writeblock_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openhcp/kamaji/core/manager"
	"github.com/openhcp/kamaji/core/tenant/writeblock"
	"github.com/openhcp/kamaji/core/testenv"
	"github.com/openhcp/kamaji/core/webhooks"
)

// The "tenant" is a test plane's real kube-apiserver; the "manager" is the deny handler of
// core/webhooks served on loopback with a certificate of the plane's CA.
var (
	plane *testenv.Plane
	c     client.Client
	// served is the handler's URL, ca the CA of its certificate.
	served string
	ca     []byte
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	var err error
	plane, err = testenv.Start(ctx, testenv.Options{})
	cancel()
	var srv *http.Server
	if err == nil {
		c, err = client.New(plane.Config, client.Options{Scheme: manager.Scheme()})
	}
	if err == nil {
		srv, err = serveDeny()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "test plane:", err)
		if plane != nil {
			plane.Stop()
		}
		os.Exit(1)
	}
	code := m.Run()
	srv.Close()
	plane.Stop()
	os.Exit(code)
}

func serveDeny() (*http.Server, error) {
	dir := filepath.Join(plane.Dir, "deny-certs")
	if err := plane.ServingCert(dir); err != nil {
		return nil, err
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		return nil, err
	}
	if ca, err = os.ReadFile(filepath.Join(dir, "ca.crt")); err != nil {
		return nil, err
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(webhooks.TenantDenyPath, webhooks.TenantDenyWebhook())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	served = "https://" + l.Addr().String() + webhooks.TenantDenyPath
	return srv, nil
}

func block(name string) writeblock.Block {
	return writeblock.Block{
		Name:       name,
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete},
		Exempt:     []string{"kube-system", "kube-node-lease"},
		Message:    "writes are frozen while the tenant's data moves to another datastore (100% / ../ \"safe\")",
		Webhook:    writeblock.Webhook{URL: served, CABundle: ca},
	}
}

func ensureNamespaces(t *testing.T, names ...string) {
	t.Helper()
	for _, ns := range names {
		if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); testenv.IgnoreAlreadyExists(err) != nil {
			t.Fatal(err)
		}
	}
}

func applied(t *testing.T, ctx context.Context, b writeblock.Block) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		return b.Apply(ctx, c, "kamaji-test", "default")
	})
	if err != nil {
		t.Fatalf("the block is not enforced: %v", err)
	}
}

func removed(t *testing.T, ctx context.Context, b writeblock.Block) {
	t.Helper()
	if err := b.Remove(ctx, c); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		ok, err := b.Enforced(ctx, c, "default")
		return !ok, err
	})
	if err != nil {
		t.Fatalf("still enforced after removal: %v", err)
	}
	for _, obj := range []client.Object{
		&admissionregistrationv1.ValidatingWebhookConfiguration{}, &admissionregistrationv1.ValidatingAdmissionPolicy{}, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{},
	} {
		if err := c.Get(ctx, client.ObjectKey{Name: b.Name}, obj); !apierrors.IsNotFound(err) {
			t.Errorf("%T %s after removal: %v", obj, b.Name, err)
		}
	}
}

func TestBlockRefusesWritesOutsideTheExemptNamespaces(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	freeze := block("kamaji-freeze")
	ensureNamespaces(t, "kube-node-lease", "apps")
	before := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "before"}, Data: map[string]string{"a": "1"}}
	if err := c.Create(ctx, before); err != nil {
		t.Fatal(err)
	}
	if ok, err := freeze.Enforced(ctx, c, "default"); err != nil || ok {
		t.Fatalf("enforced before it is applied: %v %v", ok, err)
	}
	applied(t, ctx, freeze)
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Name: "kamaji-freeze"}, cfg); err != nil || len(cfg.Webhooks) != 1 || cfg.Webhooks[0].Name != "kamaji-freeze.kamaji.clastix.io" {
		t.Fatalf("the ValidatingWebhookConfiguration kamaji-freeze: %v %+v", err, cfg.Webhooks)
	}

	refused := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), freeze.Message) || !apierrors.IsForbidden(err) {
			t.Errorf("%s: want the block's refusal (403, its message), got %v", what, err)
		}
	}
	refused("create in a namespace", c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "new"}}))
	before.Data["a"] = "2"
	refused("update", c.Update(ctx, before))
	refused("delete", c.Delete(ctx, before))
	refused("cluster-scoped create", c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "frozen-out"}}))
	// Reads pass; nodes keep their leases; kube-system stays writable.
	if err := c.Get(ctx, client.ObjectKeyFromObject(before), &corev1.ConfigMap{}); err != nil {
		t.Errorf("a read was refused: %v", err)
	}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-node-lease", Name: "node-1"}}
	if err := c.Create(ctx, lease); err != nil {
		t.Errorf("a node lease was refused: %v", err)
	}
	if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "allowed"}}); err != nil {
		t.Errorf("kube-system was refused: %v", err)
	}

	removed(t, ctx, freeze)
	if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "after"}}); err != nil {
		t.Errorf("a write after the block was lifted: %v", err)
	}
	if err := freeze.Remove(ctx, c); err != nil {
		t.Errorf("removing an absent block: %v", err)
	}
}

// With the manager unreachable the failure policy refuses the blocked writes all the same, and
// only those: the exempt namespaces stay writable.
func TestUnreachableManagerStillRefusesOnlyTheBlockedWrites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	port, err := testenv.FreePort() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	b := block("kamaji-unreachable")
	b.Operations = []admissionregistrationv1.OperationType{admissionregistrationv1.Create}
	b.Webhook.URL = "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + webhooks.TenantDenyPath
	ensureNamespaces(t, "apps")
	applied(t, ctx, b)
	err = c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", GenerateName: "blocked-"}})
	if err == nil || !strings.Contains(err.Error(), `failed calling webhook "kamaji-unreachable.kamaji.clastix.io"`) {
		t.Errorf("a blocked create with the manager unreachable: want it refused by the failed call, got %v", err)
	}
	if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", GenerateName: "allowed-"}}); err != nil {
		t.Errorf("a create in kube-system with the manager unreachable: %v", err)
	}
	removed(t, ctx, b)
}

// The exempt users write everywhere; the others are refused.
func TestExemptUsers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := block("kamaji-users")
	b.ExemptUsers = []string{"kamaji-core"}
	ensureNamespaces(t, "apps")
	applied(t, ctx, b)
	as := func(user string) client.Client {
		cfg := rest.CopyConfig(plane.Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:masters"}}
		cl, err := client.New(cfg, client.Options{Scheme: manager.Scheme()})
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	if err := as("kamaji-core").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", GenerateName: "core-"}}); err != nil {
		t.Errorf("the exempt user was refused: %v", err)
	}
	if err := as("someone").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", GenerateName: "someone-"}}); err == nil || !strings.Contains(err.Error(), b.Message) {
		t.Errorf("another user: want the block's refusal, got %v", err)
	}
	removed(t, ctx, b)
}

// A tenant upgraded from the version that installed an admission policy loses it on Apply.
func TestApplyRemovesThePreviousVersionsPolicy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := block("kamaji-legacy")
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: b.Name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"secrets"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{Expression: "false", Message: "legacy"}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: b.Name},
		Spec:       admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: b.Name, ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}},
	}
	for _, obj := range []client.Object{policy, binding} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	applied(t, ctx, b)
	for _, obj := range []client.Object{&admissionregistrationv1.ValidatingAdmissionPolicy{}, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}} {
		if err := c.Get(ctx, client.ObjectKey{Name: b.Name}, obj); !apierrors.IsNotFound(err) {
			t.Errorf("%T of the previous version after Apply: %v", obj, err)
		}
	}
	removed(t, ctx, b)
}

func TestConfigurationNeedsTheWebhook(t *testing.T) {
	b := block("kamaji-x")
	b.Webhook.URL = ""
	if _, err := b.Configuration(); err == nil || !strings.Contains(err.Error(), "no URL") {
		t.Errorf("without a URL: %v", err)
	}
	b = block("kamaji-x")
	b.Webhook.CABundle = nil
	if _, err := b.Configuration(); err == nil || !strings.Contains(err.Error(), "no CA bundle") {
		t.Errorf("without a CA: %v", err)
	}
	err := block("kamaji-x").Remove(context.Background(), c)
	if err != nil {
		t.Errorf("Remove needs no webhook: %v", err)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, msg := range []string{"plain", "with spaces, (parens): 100% / ../ \"quotes\" é", ""} {
		u := writeblock.MessageURL("https://h:443/tenant/deny/", msg)
		path := strings.TrimPrefix(u, "https://h:443")
		got, ok := writeblock.MessageFromPath("/tenant/deny", path)
		if !ok || got != msg {
			t.Errorf("%q: URL %s gave %q %v", msg, u, got, ok)
		}
	}
	if _, ok := writeblock.MessageFromPath("/tenant/deny/", "/elsewhere/x"); ok {
		t.Error("a path outside the prefix gave a message")
	}
}
