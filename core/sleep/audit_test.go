package sleep

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/openhcp/kamaji/core/tenant"
)

// touchCall is one recorded Touch call.
type touchCall struct {
	key   types.NamespacedName
	force bool
}

// fakeToucher records touches and answers err.
type fakeToucher struct {
	mu      sync.Mutex
	touches []touchCall
	err     error
}

func (f *fakeToucher) Touch(_ context.Context, key types.NamespacedName, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.touches = append(f.touches, touchCall{key, force})
	return f.err
}

func (f *fakeToucher) calls() []touchCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.touches)
}

func eventList(t *testing.T, events ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": events})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func eventJSON(user string, groups []string, uri string) map[string]any {
	return map[string]any{
		"stage": "ResponseComplete", "requestURI": uri, "userAgent": "kubectl/v1.37.2",
		"user": map[string]any{"username": user, "groups": groups},
	}
}

func withAgent(e map[string]any, agent string) map[string]any {
	e["userAgent"] = agent
	return e
}

func postAudit(h http.Handler, method, path string, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, bytes.NewReader(body)))
	return rec
}

func TestAuditHandlerCountsOutsideActivity(t *testing.T) {
	internal := [][]byte{
		eventList(t),
		eventList(t,
			eventJSON("system:apiserver", nil, "/api/v1/namespaces"),
			eventJSON("system:kube-controller-manager", nil, "/apis/apps/v1/deployments"),
			eventJSON("system:kube-scheduler", nil, "/api/v1/pods"),
			eventJSON("system:konnectivity-server", nil, "/api/v1/nodes"),
			withAgent(eventJSON("kubernetes-super-admin", []string{"system:masters"}, "/api/v1/nodes"), tenant.UserAgent),
			eventJSON("system:serviceaccount:kube-system:coredns", []string{"system:serviceaccounts", "system:serviceaccounts:kube-system"}, "/api/v1/endpoints"),
			eventJSON("alice", nil, "/healthz"),
			eventJSON("alice", nil, "/livez/ping"),
			eventJSON("alice", nil, "/readyz?verbose"),
		),
	}
	for i, body := range internal {
		tt := &fakeToucher{}
		if rec := postAudit(AuditHandler(tt, logr.Discard()), http.MethodPost, ActivityPath+"tenants/a", body); rec.Code != http.StatusOK {
			t.Errorf("internal batch %d: status %d", i, rec.Code)
		}
		if c := tt.calls(); len(c) != 0 {
			t.Errorf("internal batch %d touched %v", i, c)
		}
	}

	outside := [][]byte{
		eventList(t, eventJSON("system:apiserver", nil, "/api"), eventJSON("alice", []string{"system:authenticated"}, "/api/v1/pods")),
		// A person with super-admin.conf (the local plane hands it out) is not the core.
		eventList(t, eventJSON("kubernetes-super-admin", []string{"system:masters"}, "/api/v1/namespaces")),
		eventList(t, eventJSON("system:serviceaccount:default:ci", []string{"system:serviceaccounts:default"}, "/healthzx")),
		eventList(t, eventJSON("bob", nil, "/readyzz")),
	}
	for i, body := range outside {
		tt := &fakeToucher{}
		if rec := postAudit(AuditHandler(tt, logr.Discard()), http.MethodPost, ActivityPath+"tenants/a", body); rec.Code != http.StatusOK {
			t.Errorf("outside batch %d: status %d", i, rec.Code)
		}
		want := []touchCall{{types.NamespacedName{Namespace: "tenants", Name: "a"}, false}}
		if c := tt.calls(); !slices.Equal(c, want) {
			t.Errorf("outside batch %d: touches %v, want %v", i, c, want)
		}
	}
}

func TestAuditHandlerTouchFailureIs500(t *testing.T) {
	tt := &fakeToucher{err: errors.New("apiserver unavailable")}
	rec := postAudit(AuditHandler(tt, logr.Discard()), http.MethodPost, ActivityPath+"tenants/a", eventList(t, eventJSON("alice", nil, "/api")))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", rec.Code)
	}
}

func TestAuditHandlerRejects(t *testing.T) {
	valid := eventList(t, eventJSON("alice", nil, "/api"))
	big := append([]byte(`{"items":[],"pad":"`), bytes.Repeat([]byte("x"), maxAuditBody)...)
	big = append(big, `"}`...)
	for _, tc := range []struct {
		name, method, path string
		body               []byte
		want               int
	}{
		{"GET", http.MethodGet, ActivityPath + "tenants/a", nil, http.StatusMethodNotAllowed},
		{"no name", http.MethodPost, ActivityPath + "tenants", valid, http.StatusNotFound},
		{"empty name", http.MethodPost, ActivityPath + "tenants/", valid, http.StatusNotFound},
		{"empty namespace", http.MethodPost, ActivityPath + "/a", valid, http.StatusNotFound},
		{"three segments", http.MethodPost, ActivityPath + "tenants/a/b", valid, http.StatusNotFound},
		{"not a label", http.MethodPost, ActivityPath + "tenants/A_b", valid, http.StatusNotFound},
		{"other prefix", http.MethodPost, "/other/tenants/a", valid, http.StatusNotFound},
		{"not JSON", http.MethodPost, ActivityPath + "tenants/a", []byte("{"), http.StatusBadRequest},
		{"too large", http.MethodPost, ActivityPath + "tenants/a", big, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := &fakeToucher{}
			if rec := postAudit(AuditHandler(tt, logr.Discard()), tc.method, tc.path, tc.body); rec.Code != tc.want {
				t.Errorf("status %d, want %d", rec.Code, tc.want)
			}
			if c := tt.calls(); len(c) != 0 {
				t.Errorf("touched %v", c)
			}
		})
	}
}

func TestAuditPolicy(t *testing.T) {
	var p struct {
		APIVersion        string   `json:"apiVersion"`
		Kind              string   `json:"kind"`
		OmitStages        []string `json:"omitStages"`
		OmitManagedFields bool     `json:"omitManagedFields"`
		Rules             []struct {
			Level           string   `json:"level"`
			Users           []string `json:"users"`
			UserGroups      []string `json:"userGroups"`
			NonResourceURLs []string `json:"nonResourceURLs"`
		} `json:"rules"`
	}
	if err := yaml.UnmarshalStrict(AuditPolicy(), &p); err != nil {
		t.Fatalf("policy does not parse: %v\n%s", err, AuditPolicy())
	}
	if p.APIVersion != "audit.k8s.io/v1" || p.Kind != "Policy" || !slices.Equal(p.OmitStages, []string{"RequestReceived"}) || !p.OmitManagedFields {
		t.Errorf("policy header: %+v", p)
	}
	if len(p.Rules) != 4 {
		t.Fatalf("rules: %+v", p.Rules)
	}
	if slices.Contains(p.Rules[0].Users, "kubernetes-super-admin") {
		t.Error("super-admin.conf's user is not audited: a person using it would not keep the tenant awake")
	}
	for _, u := range []string{"system:apiserver", "system:kube-controller-manager", "system:kube-scheduler", "system:konnectivity-server"} {
		if !slices.Contains(p.Rules[0].Users, u) {
			t.Errorf("user %s is audited", u)
		}
	}
	if r := p.Rules[1]; r.Level != "None" || !slices.Equal(r.UserGroups, []string{"system:serviceaccounts:kube-system"}) {
		t.Errorf("group rule: %+v", r)
	}
	if r := p.Rules[2]; r.Level != "None" || !slices.Equal(r.NonResourceURLs, []string{"/healthz*", "/livez*", "/readyz*"}) {
		t.Errorf("probe rule: %+v", r)
	}
	if r := p.Rules[3]; r.Level != "Metadata" || r.Users != nil || r.UserGroups != nil || r.NonResourceURLs != nil {
		t.Errorf("catch-all rule: %+v", r)
	}
}

func TestWebhookKubeconfig(t *testing.T) {
	ca := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	url := "https://10.0.0.1:9443" + ActivityPath + "tenants/a"
	cfg, err := clientcmd.Load(WebhookKubeconfig(url, ca))
	if err != nil {
		t.Fatalf("kubeconfig does not load: %v\n%s", err, WebhookKubeconfig(url, ca))
	}
	if err := clientcmd.Validate(*cfg); err != nil {
		t.Errorf("kubeconfig is invalid: %v", err)
	}
	ctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		t.Fatalf("current context %q missing", cfg.CurrentContext)
	}
	cluster, user := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
	if cluster == nil || user == nil {
		t.Fatalf("context %+v names a missing cluster or user", ctx)
	}
	if cluster.Server != url || !bytes.Equal(cluster.CertificateAuthorityData, ca) {
		t.Errorf("cluster = %s %q", cluster.Server, cluster.CertificateAuthorityData)
	}
	if user.Token != "" || user.ClientCertificateData != nil || user.Username != "" {
		t.Errorf("user has credentials: %+v", user)
	}
	if strings.Contains(string(WebhookKubeconfig(url, ca)), "BEGIN") {
		t.Error("CA is not base64-encoded")
	}
}
