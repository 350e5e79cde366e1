// Package datastore is the Go face of the kamaji.datastore.v1 plugin contract.
//
// A plugin implements Plugin with plain Go types and calls Serve from its main. A host starts a
// plugin binary with NewClient and gets a *Client, which is a Plugin too; so is any in-process
// implementation, which lets a test or a benchmark use a driver with or without the transport.
package datastore

import (
	"context"
	"iter"

	"github.com/openhcp/kamaji/sdk"
)

// ErrUnimplemented is sdk.ErrUnimplemented, here for convenience.
var ErrUnimplemented = sdk.ErrUnimplemented

// Plugin is a datastore driver. Every method must be idempotent and keep no state between calls
// other than caches: the host retries after crashes and timeouts.
//
// Invalid input is reported with sdk.InvalidField (the host sees INVALID_ARGUMENT naming the
// field); an optional operation that is not supported returns ErrUnimplemented and its
// capability is not announced. Embed Unimplemented to get those answers for free.
type Plugin interface {
	GetPluginInfo(ctx context.Context) (PluginInfo, error)
	Capabilities(ctx context.Context) ([]Capability, error)
	// Probe returns an error when the plugin must be restarted, Ready=false when it is alive but
	// not ready yet.
	Probe(ctx context.Context) (ProbeResult, error)

	// ValidateConfig checks cfg's fields and that the datastore answers with it.
	ValidateConfig(ctx context.Context, cfg Config) error
	// ValidateTenant checks, offline, that t's schema and username are names the driver can
	// provision (CapabilityValidateTenant); refusals are sdk.InvalidField("tenant.schema"|
	// "tenant.username", ...). The core calls it at admission.
	ValidateTenant(ctx context.Context, cfg Config, t Tenant) error
	// EnsureTenant provisions t (user, role, grants, namespace), records t.Owner() with the
	// slice, and says how its apiserver connects. Called again with the same input, it returns
	// the same Connection. A schema or user recorded for another owner is refused with
	// sdk.Owned (ALREADY_EXISTS) naming that owner, and nothing is changed.
	EnsureTenant(ctx context.Context, cfg Config, t Tenant) (Connection, error)
	// DeleteTenant removes t's data, grants, role, user and owner record, only where t is the
	// recorded owner (or none is recorded). An absent or half-provisioned tenant is a success.
	DeleteTenant(ctx context.Context, cfg Config, t Tenant) error

	// GetUsage reports the usage of tenants and of the whole datastore (CapabilityUsage).
	GetUsage(ctx context.Context, cfg Config, tenants []Tenant) (UsageReport, error)
	// Export yields t's keys, relative to its prefix, in chunks (CapabilityExportImport). An
	// error is yielded last, with a nil chunk.
	Export(ctx context.Context, cfg Config, t Tenant) iter.Seq2[[]KeyValue, error]
	// Import writes chunks into t, overwriting existing keys (CapabilityExportImport). It stops
	// at the first error chunks yields and returns it.
	Import(ctx context.Context, cfg Config, t Tenant, chunks iter.Seq2[[]KeyValue, error]) (ImportResult, error)
}

// Unimplemented answers ErrUnimplemented for the optional operations. Embed it in a driver
// that supports neither usage, export/import nor tenant validation.
type Unimplemented struct{}

func (Unimplemented) ValidateTenant(context.Context, Config, Tenant) error { return ErrUnimplemented }

func (Unimplemented) GetUsage(context.Context, Config, []Tenant) (UsageReport, error) {
	return UsageReport{}, ErrUnimplemented
}

func (Unimplemented) Export(context.Context, Config, Tenant) iter.Seq2[[]KeyValue, error] {
	return func(yield func([]KeyValue, error) bool) { yield(nil, ErrUnimplemented) }
}

func (Unimplemented) Import(context.Context, Config, Tenant, iter.Seq2[[]KeyValue, error]) (ImportResult, error) {
	return ImportResult{}, ErrUnimplemented
}
