package addon_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/addon"
	"github.com/openhcp/kamaji/sdk/internal/testutil"
)

func TestRenderThroughPlugin(t *testing.T) {
	path, sum := testutil.BuildPlugin(t, t.TempDir(), "github.com/openhcp/kamaji/sdk/internal/testplugin")
	c, err := addon.NewClient(sdk.ClientConfig{Path: path, SHA256: sum, Args: []string{"-kind", "addon"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx := t.Context()
	if info := c.Info(); info.Name != "fake-addon" || len(info.Addons) != 1 || info.Addons[0] != "echo" {
		t.Errorf("Info = %+v", info)
	}
	caps, err := c.Capabilities(ctx)
	if err != nil || len(caps) != 1 || caps[0].String() != "CONTROL_PLANE_ADDITIONS" {
		t.Errorf("Capabilities = %v, %v", caps, err)
	}
	req := addon.RenderRequest{
		Addon: "echo",
		Tenant: addon.TenantParameters{
			Name: "a", Namespace: "ns", KubernetesVersion: "v1.37.2", ClusterDomain: "cluster.local",
			DNSServiceIPs: []string{"10.96.0.10"}, ImageRepository: "registry.local",
			ControlPlaneEndpoint: addon.Endpoint{Host: "10.0.0.1", Port: 6443},
		},
		Params: map[string]any{"replicas": 2.0, "nested": map[string]any{"on": true}},
	}
	r, err := c.Render(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var obj struct {
		Kind string
		Data map[string]any
	}
	if len(r.Objects) != 1 || json.Unmarshal(r.Objects[0], &obj) != nil {
		t.Fatalf("objects = %q", r.Objects)
	}
	want := map[string]any{
		"tenant": "ns/a", "version": "v1.37.2", "dns": "10.96.0.10",
		"params": map[string]any{"replicas": 2.0, "nested": map[string]any{"on": true}},
	}
	if got, _ := json.Marshal(obj.Data); string(got) != string(must(json.Marshal(want))) {
		t.Errorf("rendered data %s, want %s", got, must(json.Marshal(want)))
	}
	cp := r.ControlPlane
	if cp == nil || len(cp.Containers) != 1 || cp.APIServerExtraArgs[0] != "--echo=cluster.local" || cp.ServicePorts[0].Port != 8132 {
		t.Fatalf("control plane additions = %+v", cp)
	}
	if len(cp.APIServerVolumeMounts) != 1 || string(cp.APIServerVolumeMounts[0]) != `{"name":"echo-socket","mountPath":"/run/echo"}` {
		t.Errorf("apiserver volume mounts = %q", cp.APIServerVolumeMounts)
	}
	if len(cp.Files) != 1 || cp.Files[0].Path != "/etc/kubernetes/echo/echo.yaml" || string(cp.Files[0].Content) != "tenant: a\n" {
		t.Errorf("files = %+v", cp.Files)
	}

	var fe *sdk.FieldError
	if _, err := c.Render(ctx, addon.RenderRequest{Addon: "nope"}); !errors.As(err, &fe) || fe.Field != "addon" {
		t.Errorf("unknown addon: %v", err)
	}
	if _, err := c.Render(ctx, addon.RenderRequest{Addon: "echo", Params: map[string]any{"bad": make(chan int)}}); !errors.As(err, &fe) || fe.Field != "params" {
		t.Errorf("unencodable params: %v", err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
