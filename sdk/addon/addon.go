// Package addon is the Go face of the kamaji.addon.v1 plugin contract.
//
// An addon plugin is a renderer: Render turns a tenant's parameters into the objects to apply
// in the tenant cluster and, optionally, additions to the control-plane pod. A plugin implements
// Plugin and calls Serve; a host starts it with NewClient, which returns a Plugin too.
package addon

import (
	"context"
	"strconv"
	"strings"

	"github.com/openhcp/kamaji/sdk"
	pb "github.com/openhcp/kamaji/sdk/internal/gen/kamaji/addon/v1"
)

// ErrUnimplemented is sdk.ErrUnimplemented, here for convenience.
var ErrUnimplemented = sdk.ErrUnimplemented

// Plugin is an addon renderer. Render must be a pure function of its request: the core calls
// it on every reconcile and compares the result with what is applied.
type Plugin interface {
	GetPluginInfo(ctx context.Context) (PluginInfo, error)
	Capabilities(ctx context.Context) ([]Capability, error)
	// Probe returns an error when the plugin must be restarted, Ready=false when it is alive but
	// not ready yet.
	Probe(ctx context.Context) (ProbeResult, error)
	Render(ctx context.Context, req RenderRequest) (RenderResult, error)
}

// Capability is an optional feature; values are those of kamaji.addon.v1.Capability.
type Capability int32

// CapabilityControlPlaneAdditions: Render may return additions to the control-plane pod.
const CapabilityControlPlaneAdditions Capability = 1

// String gives the enum name without its prefix, e.g. "CONTROL_PLANE_ADDITIONS".
func (c Capability) String() string {
	if name, ok := pb.Capability_name[int32(c)]; ok {
		return strings.TrimPrefix(name, "CAPABILITY_")
	}
	return "CAPABILITY(" + strconv.Itoa(int(c)) + ")"
}

// PluginInfo identifies a plugin.
type PluginInfo struct {
	Name          string
	VendorVersion string
	// Addons served, e.g. "coredns".
	Addons []string
}

// ProbeResult is the answer of a live plugin.
type ProbeResult struct {
	Ready   bool
	Message string
}

// RenderRequest asks for the objects of one addon for one tenant.
type RenderRequest struct {
	// Addon is one of PluginInfo.Addons.
	Addon  string
	Tenant TenantParameters
	// Params are addon-specific settings; values are JSON-like (string, float64, bool, nil,
	// []any, map[string]any).
	Params map[string]any
}

// TenantParameters describe the tenant cluster an addon is rendered for.
type TenantParameters struct {
	Name              string
	Namespace         string
	KubernetesVersion string
	ClusterDomain     string
	ServiceCIDRs      []string
	PodCIDRs          []string
	DNSServiceIPs     []string
	// ControlPlaneEndpoint is where nodes and addons reach the tenant apiserver.
	ControlPlaneEndpoint Endpoint
	// ImageRepository and ImageTag override the addon's defaults when set.
	ImageRepository string
	ImageTag        string
}

// Endpoint is a host and port.
type Endpoint struct {
	Host string
	Port int32
}

// RenderResult is what to apply.
type RenderResult struct {
	// Objects are Kubernetes objects for the tenant cluster, one per entry, JSON or YAML.
	Objects [][]byte
	// ControlPlane, when set, is merged into the tenant's control-plane pod and Service
	// (CapabilityControlPlaneAdditions).
	ControlPlane *ControlPlaneAdditions
}

// ControlPlaneAdditions extend the control-plane Deployment and Service.
type ControlPlaneAdditions struct {
	// Containers are JSON-encoded core/v1 Containers; Volumes JSON-encoded core/v1 Volumes. JSON
	// keeps the SDK free of k8s.io/api.
	Containers [][]byte
	Volumes    [][]byte
	// APIServerExtraArgs are "--flag=value".
	APIServerExtraArgs []string
	ServicePorts       []ServicePort
	// APIServerVolumeMounts are JSON-encoded core/v1 VolumeMounts added to kube-apiserver; they
	// name volumes of Volumes.
	APIServerVolumeMounts [][]byte
	// Files are stored by the core in a ConfigMap (`<tcp>-addon-files`) and mounted read-only in
	// kube-apiserver, each at its Path.
	Files []File
}

// File is a file of the kube-apiserver container.
type File struct {
	// Path is absolute and unique among the files of every addon.
	Path    string
	Content []byte
}

// ServicePort is an extra port of the control-plane Service.
type ServicePort struct {
	Name       string
	Port       int32
	TargetPort int32
	// Protocol is TCP, UDP or SCTP; empty means TCP.
	Protocol string
}
