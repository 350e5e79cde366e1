package conformance

// The addon part of the kit: an addon plugin is a renderer, so its checks need no backend. They
// verify identity, determinism, the shape of every rendered object, image overrides, error codes
// and the consistency between the announced capabilities and what Render returns.
//
// Use RunAddon from a Go test, or VerifyAddon for a Report.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/addon"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// AddonConfig says which addon plugin to verify and with what input.
type AddonConfig struct {
	// PluginPath is the plugin binary under test, started through the real transport.
	PluginPath string
	// PluginSHA256 pins the binary; empty means the checksum of the file at PluginPath.
	PluginSHA256 string
	PluginArgs   []string
	PluginEnv    []string
	// PluginLogger receives the plugin's logs; default: warnings on stderr.
	PluginLogger hclog.Logger

	// Plugin, instead of PluginPath, verifies an in-process implementation (no transport).
	Plugin addon.Plugin

	// Addons to verify; empty means every addon the plugin lists in GetPluginInfo.
	Addons []string
	// Tenant is the tenant the addons are rendered for. Its empty fields take the values of
	// DefaultAddonTenant; ImageRepository and ImageTag are ignored (the kit sets them itself).
	Tenant addon.TenantParameters
	// Params are the addon parameters, keyed by addon name (RenderRequest.Params).
	Params map[string]map[string]any
	// RequiredTenantFields lists, per addon, the TenantParameters fields Render cannot do
	// without, by proto JSON name: "name", "namespace", "kubernetesVersion", "clusterDomain",
	// "serviceCidrs", "podCidrs", "dnsServiceIps", "controlPlaneEndpoint.host",
	// "controlPlaneEndpoint.port". The kit clears each in turn and expects INVALID_ARGUMENT
	// naming "tenant.<field>". Whatever is listed, an empty tenant must be rejected with
	// INVALID_ARGUMENT naming a tenant field, unless the addon's entry is present and empty
	// (an addon that needs nothing from the tenant).
	RequiredTenantFields map[string][]string
	// Timeout bounds each check. Default 1 minute.
	Timeout time.Duration
}

// DefaultAddonTenant is the tenant addons are rendered for when AddonConfig.Tenant leaves a
// field empty.
var DefaultAddonTenant = addon.TenantParameters{
	Name:                 "conformance",
	Namespace:            "kamaji-conformance",
	KubernetesVersion:    "v1.37.2",
	ClusterDomain:        "cluster.local",
	ServiceCIDRs:         []string{"10.96.0.0/16"},
	PodCIDRs:             []string{"10.244.0.0/16"},
	DNSServiceIPs:        []string{"10.96.0.10"},
	ControlPlaneEndpoint: addon.Endpoint{Host: "192.0.2.10", Port: 6443},
}

// The overrides the image check renders with; no plugin has them as defaults.
const (
	overrideRepository = "mirror.kamaji-conformance.example/library"
	overrideTag        = "v0.0.0-kamaji-conformance"
	unknownAddonName   = "kamaji-conformance-no-such-addon"
)

func (c AddonConfig) withDefaults() (AddonConfig, error) {
	if (c.PluginPath == "") == (c.Plugin == nil) {
		return c, errors.New("conformance: set exactly one of PluginPath and Plugin")
	}
	d := DefaultAddonTenant
	t := &c.Tenant
	setString := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	setString(&t.Name, d.Name)
	setString(&t.Namespace, d.Namespace)
	setString(&t.KubernetesVersion, d.KubernetesVersion)
	setString(&t.ClusterDomain, d.ClusterDomain)
	setString(&t.ControlPlaneEndpoint.Host, d.ControlPlaneEndpoint.Host)
	if t.ControlPlaneEndpoint.Port == 0 {
		t.ControlPlaneEndpoint.Port = d.ControlPlaneEndpoint.Port
	}
	if len(t.ServiceCIDRs) == 0 {
		t.ServiceCIDRs = slices.Clone(d.ServiceCIDRs)
	}
	if len(t.PodCIDRs) == 0 {
		t.PodCIDRs = slices.Clone(d.PodCIDRs)
	}
	if len(t.DNSServiceIPs) == 0 {
		t.DNSServiceIPs = slices.Clone(d.DNSServiceIPs)
	}
	t.ImageRepository, t.ImageTag = "", ""
	for a, fields := range c.RequiredTenantFields {
		for _, f := range fields {
			if _, err := clearTenantField(addon.TenantParameters{}, f); err != nil {
				return c, fmt.Errorf("conformance: RequiredTenantFields[%q]: %w", a, err)
			}
		}
	}
	if c.Timeout <= 0 {
		c.Timeout = time.Minute
	}
	return c, nil
}

// VerifyAddon runs every addon check and returns the report. Report.Plugin.Drivers lists the
// addons the plugin serves; the addon capabilities are named in the identity check's reason
// (Report.Capabilities holds datastore capabilities only and stays empty). The error is only for
// a Config that cannot be run at all; a plugin that fails to start is a failed check.
func VerifyAddon(ctx context.Context, cfg AddonConfig) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	r := &addonRunner{cfg: cfg, passed: map[string]bool{}}
	defer r.cleanup()
	for _, c := range addonChecks {
		r.report.Results = append(r.report.Results, r.run(ctx, c))
	}
	return r.report, nil
}

// RunAddon runs every addon check as a subtest of t: failed checks fail, skipped ones skip.
func RunAddon(t *testing.T, cfg AddonConfig) {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	r := &addonRunner{cfg: cfg, passed: map[string]bool{}}
	t.Cleanup(r.cleanup)
	for _, c := range addonChecks {
		t.Run(c.name, func(t *testing.T) {
			res := r.run(t.Context(), c)
			switch res.Status {
			case Fail:
				t.Fatal(res.Reason)
			case Skip:
				t.Skip(res.Reason)
			default:
				t.Log(res.Reason)
			}
		})
	}
}

// addonRunner carries what checks hand to each other: the plugin, its identity, and the
// baseline render of each addon.
type addonRunner struct {
	cfg      AddonConfig
	plugin   addon.Plugin
	client   *addon.Client
	addons   []string
	caps     []addon.Capability
	baseline map[string]addon.RenderResult
	passed   map[string]bool
	report   Report
}

type addonCheck struct {
	name        string
	description string
	needs       []string
	run         func(ctx context.Context, r *addonRunner) (string, error)
}

func (r *addonRunner) run(ctx context.Context, c addonCheck) Result {
	res := Result{Name: c.name, Description: c.description}
	for _, n := range c.needs {
		if !r.passed[n] {
			res.Status, res.Reason = Skip, fmt.Sprintf("needs check %q, which did not pass", n)
			return res
		}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	note, err := c.run(ctx, r)
	res.Duration = time.Since(start)
	var skip skipError
	switch {
	case errors.As(err, &skip):
		res.Status, res.Reason = Skip, skip.Error()
	case err != nil:
		res.Status, res.Reason = Fail, err.Error()
	default:
		res.Status, res.Reason = Pass, note
		r.passed[c.name] = true
	}
	return res
}

func (r *addonRunner) cleanup() {
	if r.client != nil {
		_ = r.client.Close()
	}
}

func (r *addonRunner) startPlugin() (string, error) {
	if r.cfg.Plugin != nil {
		r.plugin = r.cfg.Plugin
		return "in-process plugin, no transport", nil
	}
	sum := r.cfg.PluginSHA256
	if sum == "" {
		var err error
		if sum, err = sdk.FileSHA256(r.cfg.PluginPath); err != nil {
			return "", err
		}
	}
	c, err := addon.NewClient(sdk.ClientConfig{
		Path: r.cfg.PluginPath, Args: r.cfg.PluginArgs, Env: r.cfg.PluginEnv, SHA256: sum, Logger: r.cfg.PluginLogger,
	})
	if err != nil {
		return "", err
	}
	r.client, r.plugin = c, c
	return fmt.Sprintf("go-plugin handshake with AutoMTLS, transport protocol version %d, sha256 %s", c.ProtocolVersion(), sum), nil
}

// request is the baseline request for addon a, with the given image overrides.
func (r *addonRunner) request(a, repo, tag string) addon.RenderRequest {
	t := r.cfg.Tenant
	t.ServiceCIDRs = slices.Clone(t.ServiceCIDRs)
	t.PodCIDRs = slices.Clone(t.PodCIDRs)
	t.DNSServiceIPs = slices.Clone(t.DNSServiceIPs)
	t.ImageRepository, t.ImageTag = repo, tag
	return addon.RenderRequest{Addon: a, Tenant: t, Params: r.cfg.Params[a]}
}

func (r *addonRunner) render(ctx context.Context, req addon.RenderRequest) (addon.RenderResult, error) {
	res, err := r.plugin.Render(ctx, req)
	if err != nil {
		return res, fmt.Errorf("Render(%s, imageRepository=%q, imageTag=%q): %w", req.Addon, req.Tenant.ImageRepository, req.Tenant.ImageTag, err)
	}
	return res, nil
}

// asReportInfo maps an addon identity onto the Report's PluginInfo: Drivers are the addons.
func asReportInfo(info addon.PluginInfo) datastore.PluginInfo {
	return datastore.PluginInfo{Name: info.Name, VendorVersion: info.VendorVersion, Drivers: slices.Clone(info.Addons)}
}
