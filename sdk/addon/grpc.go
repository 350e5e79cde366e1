package addon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/openhcp/kamaji/sdk"
	pb "github.com/openhcp/kamaji/sdk/internal/gen/kamaji/addon/v1"
	"github.com/openhcp/kamaji/sdk/internal/transport"
)

// PluginName is the name of the contract in go-plugin's plugin set.
const PluginName = "addon"

// ServeOptions tunes Serve.
type ServeOptions struct {
	// Logger writes the plugin's logs; the host relays them. Default: Info, JSON on stderr.
	Logger hclog.Logger
}

// Serve runs impl as a plugin process until the host stops it.
func Serve(impl Plugin, opts ServeOptions) {
	transport.Serve(PluginName, NewGRPCPlugin(impl), transport.ServeOptions{Logger: opts.Logger})
}

// NewGRPCPlugin wraps impl as a go-plugin plugin, for those who assemble their own go-plugin
// configuration.
func NewGRPCPlugin(impl Plugin) goplugin.Plugin { return &grpcPlugin{impl: impl} }

type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	impl Plugin
}

type remote struct {
	identity pb.IdentityClient
	addon    pb.AddonClient
}

func (p *grpcPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	srv := &server{impl: p.impl}
	pb.RegisterIdentityServer(s, srv)
	pb.RegisterAddonServer(s, srv)
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &remote{identity: pb.NewIdentityClient(conn), addon: pb.NewAddonClient(conn)}, nil
}

type server struct {
	pb.UnimplementedIdentityServer
	pb.UnimplementedAddonServer
	impl Plugin
}

func (s *server) GetPluginInfo(ctx context.Context, _ *pb.GetPluginInfoRequest) (*pb.GetPluginInfoResponse, error) {
	info, err := s.impl.GetPluginInfo(ctx)
	if err != nil {
		return nil, transport.ToStatus(err)
	}
	return &pb.GetPluginInfoResponse{Name: info.Name, VendorVersion: info.VendorVersion, Addons: info.Addons}, nil
}

func (s *server) GetCapabilities(ctx context.Context, _ *pb.GetCapabilitiesRequest) (*pb.GetCapabilitiesResponse, error) {
	caps, err := s.impl.Capabilities(ctx)
	if err != nil {
		return nil, transport.ToStatus(err)
	}
	out := make([]pb.Capability, len(caps))
	for i, c := range caps {
		out[i] = pb.Capability(c)
	}
	return &pb.GetCapabilitiesResponse{Capabilities: out}, nil
}

func (s *server) Probe(ctx context.Context, _ *pb.ProbeRequest) (*pb.ProbeResponse, error) {
	r, err := s.impl.Probe(ctx)
	if err != nil {
		return nil, transport.ToStatus(err)
	}
	return &pb.ProbeResponse{Ready: r.Ready, Message: r.Message}, nil
}

func (s *server) Render(ctx context.Context, req *pb.RenderRequest) (*pb.RenderResponse, error) {
	t := req.GetTenant()
	r, err := s.impl.Render(ctx, RenderRequest{
		Addon: req.GetAddon(),
		Tenant: TenantParameters{
			Name: t.GetName(), Namespace: t.GetNamespace(),
			KubernetesVersion: t.GetKubernetesVersion(), ClusterDomain: t.GetClusterDomain(),
			ServiceCIDRs: t.GetServiceCidrs(), PodCIDRs: t.GetPodCidrs(), DNSServiceIPs: t.GetDnsServiceIps(),
			ControlPlaneEndpoint: Endpoint{Host: t.GetControlPlaneEndpoint().GetHost(), Port: t.GetControlPlaneEndpoint().GetPort()},
			ImageRepository:      t.GetImageRepository(), ImageTag: t.GetImageTag(),
		},
		Params: req.GetParams().AsMap(),
	})
	if err != nil {
		return nil, transport.ToStatus(err)
	}
	resp := &pb.RenderResponse{Objects: r.Objects}
	if cp := r.ControlPlane; cp != nil {
		resp.ControlPlane = &pb.ControlPlaneAdditions{
			Containers: cp.Containers, Volumes: cp.Volumes, ApiserverExtraArgs: cp.APIServerExtraArgs,
			ApiserverVolumeMounts: cp.APIServerVolumeMounts,
		}
		for _, f := range cp.Files {
			resp.ControlPlane.Files = append(resp.ControlPlane.Files, &pb.File{Path: f.Path, Content: f.Content})
		}
		for _, p := range cp.ServicePorts {
			resp.ControlPlane.ExtraServicePorts = append(resp.ControlPlane.ExtraServicePorts,
				&pb.ServicePort{Name: p.Name, Port: p.Port, TargetPort: p.TargetPort, Protocol: p.Protocol})
		}
	}
	return resp, nil
}

// Client is a running addon plugin process seen as a Plugin; calls get the ClientConfig's
// default deadline unless their context has one.
type Client struct {
	plugin      *goplugin.Client
	rpc         *remote
	path        string
	info        PluginInfo
	callTimeout time.Duration
}

var _ Plugin = (*Client)(nil)

// NewClient starts the plugin binary described by cfg (pinned sha256, go-plugin handshake,
// AutoMTLS, gRPC only).
func NewClient(cfg sdk.ClientConfig) (*Client, error) {
	conn, err := transport.Start(cfg, PluginName, &grpcPlugin{})
	if err != nil {
		return nil, err
	}
	rpc, ok := conn.Raw.(*remote)
	if !ok {
		conn.Client.Kill()
		return nil, fmt.Errorf("plugin %s: unexpected dispensed type %T", conn.Path, conn.Raw)
	}
	c := &Client{plugin: conn.Client, rpc: rpc, path: conn.Path, callTimeout: transport.CallTimeout(cfg)}
	if err := c.identify(transport.StartTimeout(cfg)); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// identify asks for the plugin's identity once at start: go-plugin dispenses any contract
// without asking the plugin, so this is where a plugin of the wrong kind is caught, clearly.
func (c *Client) identify(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	info, err := c.GetPluginInfo(ctx)
	if errors.Is(err, sdk.ErrUnimplemented) {
		return fmt.Errorf("plugin %s does not serve the addon contract (kamaji.addon.v1): %w", c.path, err)
	}
	if err != nil {
		return fmt.Errorf("plugin %s: %w", c.path, err)
	}
	c.info = info
	return nil
}

// Info is the plugin's identity, read when the client started.
func (c *Client) Info() PluginInfo { return c.info }

// Close stops the plugin process.
func (c *Client) Close() error {
	c.plugin.Kill()
	return nil
}

// Exited reports whether the plugin process has ended.
func (c *Client) Exited() bool { return c.plugin.Exited() }

// ProtocolVersion is the negotiated transport protocol version.
func (c *Client) ProtocolVersion() int { return c.plugin.NegotiatedVersion() }

// Pid is the plugin's process id.
func (c *Client) Pid() int {
	if rc := c.plugin.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// Path is the plugin binary.
func (c *Client) Path() string { return c.path }

func (c *Client) GetPluginInfo(ctx context.Context) (PluginInfo, error) {
	ctx, cancel := transport.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	r, err := c.rpc.identity.GetPluginInfo(ctx, &pb.GetPluginInfoRequest{})
	if err != nil {
		return PluginInfo{}, transport.FromStatus("GetPluginInfo", err)
	}
	return PluginInfo{Name: r.GetName(), VendorVersion: r.GetVendorVersion(), Addons: r.GetAddons()}, nil
}

func (c *Client) Capabilities(ctx context.Context) ([]Capability, error) {
	ctx, cancel := transport.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	r, err := c.rpc.identity.GetCapabilities(ctx, &pb.GetCapabilitiesRequest{})
	if err != nil {
		return nil, transport.FromStatus("GetCapabilities", err)
	}
	out := make([]Capability, len(r.GetCapabilities()))
	for i, c := range r.GetCapabilities() {
		out[i] = Capability(c)
	}
	return out, nil
}

func (c *Client) Probe(ctx context.Context) (ProbeResult, error) {
	ctx, cancel := transport.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	r, err := c.rpc.identity.Probe(ctx, &pb.ProbeRequest{})
	if err != nil {
		return ProbeResult{}, transport.FromStatus("Probe", err)
	}
	return ProbeResult{Ready: r.GetReady(), Message: r.GetMessage()}, nil
}

func (c *Client) Render(ctx context.Context, req RenderRequest) (RenderResult, error) {
	params, err := structpb.NewStruct(req.Params)
	if err != nil {
		return RenderResult{}, &sdk.FieldError{Field: "params", Message: err.Error()}
	}
	t := req.Tenant
	ctx, cancel := transport.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	r, err := c.rpc.addon.Render(ctx, &pb.RenderRequest{
		Addon: req.Addon,
		Tenant: &pb.TenantParameters{
			Name: t.Name, Namespace: t.Namespace, KubernetesVersion: t.KubernetesVersion, ClusterDomain: t.ClusterDomain,
			ServiceCidrs: t.ServiceCIDRs, PodCidrs: t.PodCIDRs, DnsServiceIps: t.DNSServiceIPs,
			ControlPlaneEndpoint: &pb.Endpoint{Host: t.ControlPlaneEndpoint.Host, Port: t.ControlPlaneEndpoint.Port},
			ImageRepository:      t.ImageRepository, ImageTag: t.ImageTag,
		},
		Params: params,
	})
	if err != nil {
		return RenderResult{}, transport.FromStatus("Render", err)
	}
	out := RenderResult{Objects: r.GetObjects()}
	if cp := r.GetControlPlane(); cp != nil {
		out.ControlPlane = &ControlPlaneAdditions{
			Containers: cp.GetContainers(), Volumes: cp.GetVolumes(), APIServerExtraArgs: cp.GetApiserverExtraArgs(),
			APIServerVolumeMounts: cp.GetApiserverVolumeMounts(),
		}
		for _, f := range cp.GetFiles() {
			out.ControlPlane.Files = append(out.ControlPlane.Files, File{Path: f.GetPath(), Content: f.GetContent()})
		}
		for _, p := range cp.GetExtraServicePorts() {
			out.ControlPlane.ServicePorts = append(out.ControlPlane.ServicePorts,
				ServicePort{Name: p.GetName(), Port: p.GetPort(), TargetPort: p.GetTargetPort(), Protocol: p.GetProtocol()})
		}
	}
	return out, nil
}
