package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/addon"
	"github.com/openhcp/kamaji/sdk/conformance"
)

// sampleAddon renders a Deployment whose image honours the overrides, and a sidecar for the
// control plane. Its knobs break one rule each, for the kit to catch.
type sampleAddon struct {
	noCapability   bool // returns additions without announcing them
	danglingMount  bool // mounts a volume in kube-apiserver that it does not return
	tagMovesRepo   bool // imageTag also changes the repository
	nondeterminism bool // embeds a call counter in the render
	lenient        bool // renders an empty tenant without complaint
	counter        int64
}

func (p *sampleAddon) GetPluginInfo(context.Context) (addon.PluginInfo, error) {
	return addon.PluginInfo{Name: "sample", VendorVersion: "1.0.0", Addons: []string{"sample"}}, nil
}

func (p *sampleAddon) Capabilities(context.Context) ([]addon.Capability, error) {
	if p.noCapability {
		return nil, nil
	}
	return []addon.Capability{addon.CapabilityControlPlaneAdditions}, nil
}

func (p *sampleAddon) Probe(context.Context) (addon.ProbeResult, error) {
	return addon.ProbeResult{Ready: true}, nil
}

func (p *sampleAddon) Render(_ context.Context, req addon.RenderRequest) (addon.RenderResult, error) {
	if req.Addon != "sample" {
		return addon.RenderResult{}, sdk.InvalidField("addon", "unknown addon %q", req.Addon)
	}
	t := req.Tenant
	if !p.lenient && t.KubernetesVersion == "" {
		return addon.RenderResult{}, sdk.InvalidField("tenant.kubernetesVersion", "required")
	}
	if !p.lenient && t.ControlPlaneEndpoint.Host == "" {
		return addon.RenderResult{}, sdk.InvalidField("tenant.controlPlaneEndpoint.host", "required")
	}
	repo, tag := "registry.example/sample", t.KubernetesVersion
	if t.ImageRepository != "" {
		repo = t.ImageRepository
	}
	if t.ImageTag != "" {
		tag = t.ImageTag
		if p.tagMovesRepo {
			repo = "elsewhere.example"
		}
	}
	note := ""
	if p.nondeterminism {
		note = fmt.Sprint(atomic.AddInt64(&p.counter, 1))
	}
	dep, _ := json.Marshal(map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "sample", "namespace": "kube-system", "annotations": map[string]any{"n": note}},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"name": "sample", "image": repo + "/sample:" + tag}},
		}}},
	})
	sa := []byte(`{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"sample","namespace":"kube-system"}}`)
	mountedVolume := "sample-socket"
	if p.danglingMount {
		mountedVolume = "nowhere"
	}
	return addon.RenderResult{
		Objects: [][]byte{sa, dep},
		ControlPlane: &addon.ControlPlaneAdditions{
			Containers: [][]byte{[]byte(`{"name":"sample-server","image":"` + repo + `/sample-server:` + tag +
				`","volumeMounts":[{"name":"sample-socket","mountPath":"/run/sample"}]}`)},
			Volumes:               [][]byte{[]byte(`{"name":"sample-socket","emptyDir":{}}`)},
			APIServerExtraArgs:    []string{"--sample=1"},
			ServicePorts:          []addon.ServicePort{{Name: "sample", Port: 8132, TargetPort: 8132}},
			APIServerVolumeMounts: [][]byte{[]byte(`{"name":"` + mountedVolume + `","mountPath":"/run/sample"}`)},
			Files:                 []addon.File{{Path: "/etc/kubernetes/sample/config.yaml", Content: []byte("socket: /run/sample/s.sock\n")}},
		},
	}, nil
}

func verifyAddon(t *testing.T, p addon.Plugin) conformance.Report {
	t.Helper()
	rep, err := conformance.VerifyAddon(t.Context(), conformance.AddonConfig{
		Plugin:               p,
		RequiredTenantFields: map[string][]string{"sample": {"kubernetesVersion", "controlPlaneEndpoint.host"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := rep.Print(&out); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	return rep
}

func TestVerifyAddonPasses(t *testing.T) {
	rep := verifyAddon(t, &sampleAddon{})
	for _, r := range rep.Results {
		if r.Status != conformance.Pass {
			t.Errorf("%s: %s (%s)", r.Name, r.Status, r.Reason)
		}
	}
	if len(rep.Results) != 9 || rep.Plugin.Name != "sample" || len(rep.Plugin.Drivers) != 1 || rep.Plugin.Drivers[0] != "sample" {
		t.Errorf("report: %+v", rep)
	}
}

// Each broken plugin fails exactly the check about its fault.
func TestVerifyAddonCatches(t *testing.T) {
	for _, tc := range []struct {
		plugin *sampleAddon
		check  string
		reason string
	}{
		{&sampleAddon{noCapability: true}, "control-plane-additions", "does not announce CONTROL_PLANE_ADDITIONS"},
		{&sampleAddon{danglingMount: true}, "control-plane-additions", `kube-apiserver mounts volume "nowhere"`},
		{&sampleAddon{tagMovesRepo: true}, "image-overrides", "imageTag alone changed the repository"},
		{&sampleAddon{nondeterminism: true}, "deterministic", "differ"},
		{&sampleAddon{lenient: true}, "missing-tenant-parameters", "want INVALID_ARGUMENT"},
	} {
		t.Run(tc.check, func(t *testing.T) {
			rep := verifyAddon(t, tc.plugin)
			for _, r := range rep.Results {
				want := conformance.Pass
				if r.Name == tc.check {
					want = conformance.Fail
					if !strings.Contains(r.Reason, tc.reason) {
						t.Errorf("%s: reason %q does not say %q", r.Name, r.Reason, tc.reason)
					}
				}
				if r.Status != want {
					t.Errorf("%s: %s (%s), want %s", r.Name, r.Status, r.Reason, want)
				}
			}
		})
	}
}

func TestVerifyAddonConfig(t *testing.T) {
	if _, err := conformance.VerifyAddon(t.Context(), conformance.AddonConfig{}); err == nil {
		t.Error("VerifyAddon without a plugin did not fail")
	}
	_, err := conformance.VerifyAddon(t.Context(), conformance.AddonConfig{
		Plugin: &sampleAddon{}, RequiredTenantFields: map[string][]string{"sample": {"nope"}},
	})
	if err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown required field: %v", err)
	}
	rep, err := conformance.VerifyAddon(t.Context(), conformance.AddonConfig{Plugin: &sampleAddon{}, Addons: []string{"other"}})
	if err != nil || rep.Passed() || !strings.Contains(rep.Results[1].Reason, `"other"`) {
		t.Errorf("an addon the plugin does not serve: %v %+v", err, rep.Results)
	}
}

func TestRunAddon(t *testing.T) {
	conformance.RunAddon(t, conformance.AddonConfig{Plugin: &sampleAddon{}})
}
