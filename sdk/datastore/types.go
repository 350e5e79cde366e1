package datastore

import (
	"strconv"
	"strings"

	pb "github.com/openhcp/kamaji/sdk/internal/gen/kamaji/datastore/v1"
)

// Capability is an optional feature a plugin announces. The values are those of the proto enum
// kamaji.datastore.v1.Capability, so a value unknown to this SDK (a plugin built on a newer
// minor) survives the trip and prints as its number.
type Capability int32

const (
	CapabilityExportImport Capability = 1 // Export and Import are implemented.
	CapabilityUsage        Capability = 2 // GetUsage is implemented.
	CapabilityMultiTenant  Capability = 3 // many tenants share one datastore, isolated by the plugin.
	CapabilityNeedsCAKey   Capability = 4 // the core signs tenant client certificates with the DataStore CA key.
	CapabilityDirectEtcd   Capability = 5 // EnsureTenant answers with an etcd connection.
	CapabilityKineSidecar  Capability = 6 // EnsureTenant answers with a kine sidecar.
	// CapabilityValidateTenant: ValidateTenant is implemented.
	CapabilityValidateTenant Capability = 7
)

// String gives the enum name without its prefix, e.g. "EXPORT_IMPORT".
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
	// Drivers are the DataStore spec.driver values served, e.g. "etcd".
	Drivers []string
}

// ProbeResult is the answer of a live plugin; a dead one answers with an error instead.
type ProbeResult struct {
	Ready   bool
	Message string
}

// Tenant is a tenant control plane's slice of a datastore.
type Tenant struct {
	Namespace string
	Name      string
	// Schema is the tenant's namespace in the datastore: etcd prefix, database name...
	Schema string
	// Username is the tenant's datastore user, the certificate CN for certificate authentication.
	Username string
	// UID is the owning TenantControlPlane's metadata.uid. The plugin records Owner() with the
	// slice and compares it on every EnsureTenant and DeleteTenant.
	UID string
}

// Owner is who a slice belongs to: the TenantControlPlane's namespace, name and uid.
type Owner struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
}

// Owner is the owner record of t.
func (t Tenant) Owner() Owner { return Owner{Namespace: t.Namespace, Name: t.Name, UID: t.UID} }

// Same reports whether o and other are the same owner. The uid decides: a TenantControlPlane
// deleted and created again under the same name is another owner.
func (o Owner) Same(other Owner) bool { return o.UID == other.UID }

// String names the owner in messages: "namespace/name (uid 1234)".
func (o Owner) String() string { return o.Namespace + "/" + o.Name + " (uid " + o.UID + ")" }

// Connection says how the tenant kube-apiserver reaches its data: exactly one field is set.
type Connection struct {
	Etcd *EtcdConnection
	Kine *KineSidecar
}

// EtcdConnection is a direct etcd connection.
type EtcdConnection struct {
	// Servers are URLs for --etcd-servers.
	Servers []string
	// Prefix for --etcd-prefix, e.g. "/tenant-a/".
	Prefix string
	// ClientCertificate is what the core signs with the DataStore CA for the apiserver.
	ClientCertificate CertificateRequest
}

// CertificateRequest is the subject of a client certificate the core must issue.
type CertificateRequest struct {
	CommonName    string
	Organizations []string
}

// KineSidecar is a kine container running next to kube-apiserver.
type KineSidecar struct {
	Image string
	Args  []string
	Env   []EnvVar
	Files []File
	// ListenEndpoint is where kine listens and the apiserver connects.
	ListenEndpoint string
}

// EnvVar is an environment variable of the sidecar; Secret ones are delivered through a Secret.
type EnvVar struct {
	Name   string
	Value  string
	Secret bool
}

// File is mounted into the sidecar; Secret ones are stored in a Secret.
type File struct {
	Path    string
	Content []byte
	Mode    uint32
	Secret  bool
}

// Usage is an amount of data. -1 means unknown.
type Usage struct {
	Bytes int64
	Keys  int64
}

// TenantUsage is the usage of one tenant.
type TenantUsage struct {
	Tenant Tenant
	Usage  Usage
}

// UsageReport answers GetUsage.
type UsageReport struct {
	Tenants []TenantUsage
	Total   Usage
}

// KeyValue is one key of a tenant, relative to the tenant's prefix or namespace.
type KeyValue struct {
	Key   []byte
	Value []byte
}

// ImportResult counts what Import wrote.
type ImportResult struct {
	Keys  int64
	Bytes int64
}
