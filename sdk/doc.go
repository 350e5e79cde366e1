// Package sdk is the only module a Kamaji plugin imports. This root package holds what the
// datastore and addon contracts share: how a host starts a plugin (ClientConfig), the errors that
// cross the wire with a meaning (ErrUnimplemented, FieldError) and the transport protocol version.
//
// The contracts themselves live in the datastore and addon packages; the conformance package
// verifies a plugin binary against a real backend, and testkit starts such a backend for tests.
package sdk

// ProtocolVersion is the go-plugin transport protocol version this SDK speaks. It changes only
// when the wire framing changes (not when an API gains fields or RPCs: that is the proto package's
// job, see kamaji.datastore.v1), and hosts negotiate it with go-plugin's VersionedPlugins.
const ProtocolVersion = 1
