package datastore

import (
	"context"
	"errors"
	"io"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/openhcp/kamaji/sdk"
	pb "github.com/openhcp/kamaji/sdk/internal/gen/kamaji/datastore/v1"
	"github.com/openhcp/kamaji/sdk/internal/transport"
)

// PluginName is the name of the contract in go-plugin's plugin set.
const PluginName = "datastore"

// ServeOptions tunes Serve.
type ServeOptions struct {
	// Logger writes the plugin's logs; the host relays them. Default: Info, JSON on stderr.
	Logger hclog.Logger
}

// Serve runs impl as a plugin process until the host stops it. A plugin's main is:
//
//	func main() { datastore.Serve(driver.New(), datastore.ServeOptions{}) }
//
// Run by hand (not by a host), the binary prints a hint and exits with status 1.
func Serve(impl Plugin, opts ServeOptions) {
	transport.Serve(PluginName, NewGRPCPlugin(impl), transport.ServeOptions{Logger: opts.Logger})
}

// NewGRPCPlugin wraps impl as a go-plugin plugin, for hosts or plugins that assemble their own
// go-plugin configuration (e.g. one binary serving several contracts). It serves impl and, on the
// host side, dispenses a Plugin.
func NewGRPCPlugin(impl Plugin) goplugin.Plugin { return &grpcPlugin{impl: impl} }

type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	impl Plugin
}

func (p *grpcPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	srv := &server{impl: p.impl}
	pb.RegisterIdentityServer(s, srv)
	pb.RegisterDataStoreServer(s, srv)
	return nil
}

// remote is what the host side dispenses; Client adds deadlines and process control on top.
type remote struct {
	identity  pb.IdentityClient
	datastore pb.DataStoreClient
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &remote{identity: pb.NewIdentityClient(conn), datastore: pb.NewDataStoreClient(conn)}, nil
}

// server adapts a Plugin to the generated gRPC services.
type server struct {
	pb.UnimplementedIdentityServer
	pb.UnimplementedDataStoreServer
	impl Plugin
}

func (s *server) GetPluginInfo(ctx context.Context, _ *pb.GetPluginInfoRequest) (*pb.GetPluginInfoResponse, error) {
	info, err := s.impl.GetPluginInfo(ctx)
	if err != nil {
		return nil, transport.ToStatus(err)
	}
	return &pb.GetPluginInfoResponse{Name: info.Name, VendorVersion: info.VendorVersion, Drivers: info.Drivers}, nil
}

func (s *server) GetCapabilities(ctx context.Context, _ *pb.GetCapabilitiesRequest) (*pb.GetCapabilitiesResponse, error) {
	caps, err := s.impl.Capabilities(ctx)
	if err != nil {
		return nil, transport.ToStatus(err)
	}
	return &pb.GetCapabilitiesResponse{Capabilities: capsToPB(caps)}, nil
}

func (s *server) Probe(ctx context.Context, _ *pb.ProbeRequest) (*pb.ProbeResponse, error) {
	r, err := s.impl.Probe(ctx)
	if err != nil {
		return nil, transport.ToStatus(err)
	}
	return &pb.ProbeResponse{Ready: r.Ready, Message: r.Message}, nil
}

func (s *server) ValidateConfig(ctx context.Context, req *pb.ValidateConfigRequest) (*pb.ValidateConfigResponse, error) {
	if err := s.impl.ValidateConfig(ctx, configFromPB(req.GetConfig())); err != nil {
		return nil, transport.ToStatus(err)
	}
	return &pb.ValidateConfigResponse{}, nil
}

func (s *server) ValidateTenant(ctx context.Context, req *pb.ValidateTenantRequest) (*pb.ValidateTenantResponse, error) {
	if err := s.impl.ValidateTenant(ctx, configFromPB(req.GetConfig()), tenantFromPB(req.GetTenant())); err != nil {
		return nil, transport.ToStatus(err)
	}
	return &pb.ValidateTenantResponse{}, nil
}

func (s *server) EnsureTenant(ctx context.Context, req *pb.EnsureTenantRequest) (*pb.EnsureTenantResponse, error) {
	conn, err := s.impl.EnsureTenant(ctx, configFromPB(req.GetConfig()), tenantFromPB(req.GetTenant()))
	if err != nil {
		return nil, transport.ToStatus(err)
	}
	return connectionToPB(conn), nil
}

func (s *server) DeleteTenant(ctx context.Context, req *pb.DeleteTenantRequest) (*pb.DeleteTenantResponse, error) {
	if err := s.impl.DeleteTenant(ctx, configFromPB(req.GetConfig()), tenantFromPB(req.GetTenant())); err != nil {
		return nil, transport.ToStatus(err)
	}
	return &pb.DeleteTenantResponse{}, nil
}

func (s *server) GetUsage(ctx context.Context, req *pb.GetUsageRequest) (*pb.GetUsageResponse, error) {
	tenants := make([]Tenant, len(req.GetTenants()))
	for i, t := range req.GetTenants() {
		tenants[i] = tenantFromPB(t)
	}
	r, err := s.impl.GetUsage(ctx, configFromPB(req.GetConfig()), tenants)
	if err != nil {
		return nil, transport.ToStatus(err)
	}
	resp := &pb.GetUsageResponse{Total: usageToPB(r.Total)}
	for _, tu := range r.Tenants {
		resp.Tenants = append(resp.Tenants, &pb.TenantUsage{Tenant: tenantToPB(tu.Tenant), Usage: usageToPB(tu.Usage)})
	}
	return resp, nil
}

func (s *server) Export(req *pb.ExportRequest, stream grpc.ServerStreamingServer[pb.Chunk]) error {
	for kvs, err := range s.impl.Export(stream.Context(), configFromPB(req.GetConfig()), tenantFromPB(req.GetTenant())) {
		if err != nil {
			return transport.ToStatus(err)
		}
		if len(kvs) == 0 {
			continue
		}
		if err := stream.Send(chunkToPB(kvs)); err != nil {
			return err
		}
	}
	return nil
}

func (s *server) Import(stream grpc.ClientStreamingServer[pb.ImportRequest, pb.ImportResponse]) error {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return transport.ToStatus(sdk.InvalidField("config", "the import stream is empty; the first message must carry config and tenant"))
	}
	if err != nil {
		return err
	}
	if first.GetConfig() == nil {
		return transport.ToStatus(sdk.InvalidField("config", "required on the first message"))
	}
	chunks := func(yield func([]KeyValue, error) bool) {
		if c := first.GetChunk(); len(c.GetKvs()) > 0 && !yield(chunkFromPB(c), nil) {
			return
		}
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(nil, err)
				return
			}
			if len(msg.GetChunk().GetKvs()) > 0 && !yield(chunkFromPB(msg.GetChunk()), nil) {
				return
			}
		}
	}
	r, err := s.impl.Import(stream.Context(), configFromPB(first.GetConfig()), tenantFromPB(first.GetTenant()), chunks)
	if err != nil {
		return transport.ToStatus(err)
	}
	return stream.SendAndClose(&pb.ImportResponse{Keys: r.Keys, Bytes: r.Bytes})
}
