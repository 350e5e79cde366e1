package datastore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"time"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/openhcp/kamaji/sdk"
	pb "github.com/openhcp/kamaji/sdk/internal/gen/kamaji/datastore/v1"
	"github.com/openhcp/kamaji/sdk/internal/transport"
)

// Client is a running plugin process seen as a Plugin. Every call gets the ClientConfig's default
// deadline unless its context already has one; gRPC errors come back as sdk errors
// (ErrUnimplemented, *sdk.FieldError) or wrapped status errors.
type Client struct {
	plugin        *goplugin.Client
	rpc           *remote
	path          string
	info          PluginInfo
	callTimeout   time.Duration
	streamTimeout time.Duration
}

var _ Plugin = (*Client)(nil)

// NewClient starts the plugin binary described by cfg: it verifies the pinned sha256, performs
// the go-plugin handshake (transport protocol version, AutoMTLS, gRPC only) and returns a client.
// Close it to stop the process; sdk.KillPlugins stops all of them.
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
	c := &Client{
		plugin:        conn.Client,
		rpc:           rpc,
		path:          conn.Path,
		callTimeout:   transport.CallTimeout(cfg),
		streamTimeout: transport.StreamTimeout(cfg),
	}
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
		return fmt.Errorf("plugin %s does not serve the datastore contract (kamaji.datastore.v1): %w", c.path, err)
	}
	if err != nil {
		return fmt.Errorf("plugin %s: %w", c.path, err)
	}
	c.info = info
	return nil
}

// Info is the plugin's identity, read when the client started.
func (c *Client) Info() PluginInfo { return c.info }

// Close stops the plugin process: gracefully, then by force.
func (c *Client) Close() error {
	c.plugin.Kill()
	return nil
}

// Exited reports whether the plugin process has ended (crashed or closed); the host then starts
// a new client.
func (c *Client) Exited() bool { return c.plugin.Exited() }

// Pid is the plugin's process id.
func (c *Client) Pid() int {
	if rc := c.plugin.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// ProtocolVersion is the negotiated transport protocol version.
func (c *Client) ProtocolVersion() int { return c.plugin.NegotiatedVersion() }

// Path is the plugin binary.
func (c *Client) Path() string { return c.path }

func (c *Client) GetPluginInfo(ctx context.Context) (PluginInfo, error) {
	ctx, cancel := transport.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	r, err := c.rpc.identity.GetPluginInfo(ctx, &pb.GetPluginInfoRequest{})
	if err != nil {
		return PluginInfo{}, transport.FromStatus("GetPluginInfo", err)
	}
	return PluginInfo{Name: r.GetName(), VendorVersion: r.GetVendorVersion(), Drivers: r.GetDrivers()}, nil
}

func (c *Client) Capabilities(ctx context.Context) ([]Capability, error) {
	ctx, cancel := transport.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	r, err := c.rpc.identity.GetCapabilities(ctx, &pb.GetCapabilitiesRequest{})
	if err != nil {
		return nil, transport.FromStatus("GetCapabilities", err)
	}
	return capsFromPB(r.GetCapabilities()), nil
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

func (c *Client) ValidateConfig(ctx context.Context, cfg Config) error {
	ctx, cancel := transport.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	_, err := c.rpc.datastore.ValidateConfig(ctx, &pb.ValidateConfigRequest{Config: configToPB(cfg)})
	return Redact(transport.FromStatus("ValidateConfig", err), cfg)
}

func (c *Client) ValidateTenant(ctx context.Context, cfg Config, t Tenant) error {
	ctx, cancel := transport.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	_, err := c.rpc.datastore.ValidateTenant(ctx, &pb.ValidateTenantRequest{Config: configToPB(cfg), Tenant: tenantToPB(t)})
	return Redact(transport.FromStatus("ValidateTenant", err), cfg)
}

func (c *Client) EnsureTenant(ctx context.Context, cfg Config, t Tenant) (Connection, error) {
	ctx, cancel := transport.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	r, err := c.rpc.datastore.EnsureTenant(ctx, &pb.EnsureTenantRequest{Config: configToPB(cfg), Tenant: tenantToPB(t)})
	if err != nil {
		return Connection{}, Redact(transport.FromStatus("EnsureTenant", err), cfg)
	}
	return connectionFromPB(r), nil
}

func (c *Client) DeleteTenant(ctx context.Context, cfg Config, t Tenant) error {
	ctx, cancel := transport.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	_, err := c.rpc.datastore.DeleteTenant(ctx, &pb.DeleteTenantRequest{Config: configToPB(cfg), Tenant: tenantToPB(t)})
	return Redact(transport.FromStatus("DeleteTenant", err), cfg)
}

func (c *Client) GetUsage(ctx context.Context, cfg Config, tenants []Tenant) (UsageReport, error) {
	ctx, cancel := transport.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	req := &pb.GetUsageRequest{Config: configToPB(cfg)}
	for _, t := range tenants {
		req.Tenants = append(req.Tenants, tenantToPB(t))
	}
	r, err := c.rpc.datastore.GetUsage(ctx, req)
	if err != nil {
		return UsageReport{}, Redact(transport.FromStatus("GetUsage", err), cfg)
	}
	out := UsageReport{Total: usageFromPB(r.GetTotal())}
	for _, tu := range r.GetTenants() {
		out.Tenants = append(out.Tenants, TenantUsage{Tenant: tenantFromPB(tu.GetTenant()), Usage: usageFromPB(tu.GetUsage())})
	}
	return out, nil
}

// Export streams t's keys. The stream starts when the sequence is iterated and is cancelled when
// the loop stops early.
func (c *Client) Export(ctx context.Context, cfg Config, t Tenant) iter.Seq2[[]KeyValue, error] {
	return func(yield func([]KeyValue, error) bool) {
		ctx, cancel := transport.WithTimeout(ctx, c.streamTimeout)
		defer cancel()
		stream, err := c.rpc.datastore.Export(ctx, &pb.ExportRequest{Config: configToPB(cfg), Tenant: tenantToPB(t)})
		if err != nil {
			yield(nil, Redact(transport.FromStatus("Export", err), cfg))
			return
		}
		for {
			chunk, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(nil, Redact(transport.FromStatus("Export", err), cfg))
				return
			}
			if !yield(chunkFromPB(chunk), nil) {
				return
			}
		}
	}
}

// Import streams chunks into t. An error from chunks cancels the stream and is returned.
func (c *Client) Import(ctx context.Context, cfg Config, t Tenant, chunks iter.Seq2[[]KeyValue, error]) (ImportResult, error) {
	ctx, cancel := transport.WithTimeout(ctx, c.streamTimeout)
	defer cancel()
	stream, err := c.rpc.datastore.Import(ctx)
	if err != nil {
		return ImportResult{}, Redact(transport.FromStatus("Import", err), cfg)
	}
	first := &pb.ImportRequest{Config: configToPB(cfg), Tenant: tenantToPB(t)}
	send := func(kvs []KeyValue) error {
		req := &pb.ImportRequest{Chunk: chunkToPB(kvs)}
		if first != nil {
			req.Config, req.Tenant, first = first.Config, first.Tenant, nil
		}
		return stream.Send(req)
	}
	for kvs, err := range chunks {
		if err != nil {
			return ImportResult{}, fmt.Errorf("Import: source: %w", err)
		}
		if err := send(kvs); err != nil {
			// io.EOF means the plugin ended the stream; its status comes with CloseAndRecv.
			if errors.Is(err, io.EOF) {
				break
			}
			return ImportResult{}, Redact(transport.FromStatus("Import", err), cfg)
		}
	}
	if first != nil {
		if err := send(nil); err != nil && !errors.Is(err, io.EOF) {
			return ImportResult{}, Redact(transport.FromStatus("Import", err), cfg)
		}
	}
	r, err := stream.CloseAndRecv()
	if err != nil {
		return ImportResult{}, Redact(transport.FromStatus("Import", err), cfg)
	}
	return ImportResult{Keys: r.GetKeys(), Bytes: r.GetBytes()}, nil
}
