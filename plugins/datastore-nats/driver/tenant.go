package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// markerKey is a kine "meta" key (no leading '/', so never an apiserver key) recording which
// tenant a bucket belongs to, for operators and for the single-tenant refusal's message. The
// tenant can write it, so ownership is decided by the registry (registry.go), never by it,
// except to refuse adopting a bucket of an earlier release that names another tenant.
const markerKey = "kamaji.io/tenant"

type marker struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid,omitempty"`
	Schema    string `json:"schema"`
	Username  string `json:"username"`
}

func (m marker) String() string {
	return fmt.Sprintf("%s/%s (schema %q)", m.Namespace, m.Name, m.Schema)
}

// kvConfig is the bucket configuration kine itself asks for (kine's CreateKeyValue refuses a
// bucket with another one).
func (s *settings) kvConfig(bucket string) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: bucket, Description: kineDescription, History: uint8(s.revHistory), Replicas: s.replicas}
}

// EnsureTenant claims the tenant's schema and username in the owner registry, then creates its
// bucket (as kine would) and records the tenant in it. In jwt mode it returns credentials of a
// user restricted to that bucket; in basic mode it refuses a tenant when the DataStore already
// serves another one (FAILED_PRECONDITION naming it). A schema or username recorded for another
// owner is refused (ALREADY_EXISTS naming it) before anything is created.
func (d *Driver) EnsureTenant(ctx context.Context, cfg datastore.Config, t datastore.Tenant) (datastore.Connection, error) {
	s, err := d.settings(cfg)
	if err != nil {
		return datastore.Connection{}, err
	}
	bucket, err := tenantBucket(cfg, t)
	if err != nil {
		return datastore.Connection{}, err
	}
	js, err := d.admin(s)
	if err != nil {
		return datastore.Connection{}, err
	}
	reg, err := openRegistry(ctx, js, s, true)
	if err != nil {
		return datastore.Connection{}, err
	}
	want, claims := recordOf(t), claimsOf(t)
	// Read first, so that a refused twin writes nothing at all.
	for _, c := range claims {
		if err := reg.read(ctx, c); err != nil {
			return datastore.Connection{}, err
		}
		if err := c.check(want); err != nil {
			return datastore.Connection{}, err
		}
	}
	if claims[0].rec == nil {
		// No record: a bucket already there is an earlier release's (or hand-made), adopted.
		if err := adoptable(ctx, js, bucket, t); err != nil {
			return datastore.Connection{}, err
		}
	}
	if s.mode == AuthBasic {
		if err := s.refuseSecondTenant(ctx, js, bucket, cfg); err != nil {
			return datastore.Connection{}, err
		}
	}
	// Schema first, then username, in every call: of two callers wanting a key, the first
	// Create wins and the other is refused, with its own claims undone.
	for _, c := range claims {
		if err := reg.take(ctx, c, want); err != nil {
			reg.undo(ctx, claims)
			return datastore.Connection{}, err
		}
	}
	_, lookupErr := js.KeyValue(ctx, bucket)
	created := lookupErr != nil
	kv, err := js.CreateKeyValue(ctx, s.kvConfig(bucket))
	if errors.Is(err, jetstream.ErrBucketExists) {
		return datastore.Connection{}, status.Errorf(codes.FailedPrecondition,
			"bucket %q exists with another configuration than kine's (history %d, replicas %d): %v", bucket, s.revHistory, s.replicas, err)
	}
	if err != nil {
		// The claims stay: a retry resumes, DeleteTenant removes them.
		return datastore.Connection{}, fmt.Errorf("create bucket %q: %w", bucket, err)
	}
	if s.mode == AuthBasic && created {
		// Two first tenants at once: both may have passed the check. The one that created its
		// bucket last backs off.
		if err := s.refuseSecondTenant(ctx, js, bucket, cfg); err != nil {
			_ = js.DeleteKeyValue(ctx, bucket)
			reg.undo(ctx, claims)
			return datastore.Connection{}, err
		}
	}
	if err := writeMarker(ctx, kv, t); err != nil {
		return datastore.Connection{}, err
	}
	k, err := s.sidecar(bucket, t)
	if err != nil {
		return datastore.Connection{}, err
	}
	return datastore.Connection{Kine: k}, nil
}

// adoptable refuses an unrecorded bucket whose marker names another tenant: an earlier release
// let two TenantControlPlanes with the same schema and username share one bucket, and only the
// one its marker names may take it. A bucket without a marker is adopted.
func adoptable(ctx context.Context, js jetstream.JetStream, bucket string, t datastore.Tenant) error {
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bucket %q: %w", bucket, err)
	}
	m, ok := readMarker(ctx, kv)
	if !ok || m.Namespace == t.Namespace && m.Name == t.Name && (m.UID == "" || m.UID == t.UID) {
		return nil
	}
	owner := fmt.Sprintf("%s/%s", m.Namespace, m.Name)
	if m.UID != "" {
		owner = datastore.Owner{Namespace: m.Namespace, Name: m.Name, UID: m.UID}.String()
	}
	return sdk.Owned("tenant.schema", "schema %q: bucket %q, which no owner record covers, is owned by %s according to its marker", t.Schema, bucket, owner)
}

// refuseSecondTenant fails when a bucket of another tenant exists: with plain credentials every
// tenant would have the same rights, so tenants could read each other's data.
func (s *settings) refuseSecondTenant(ctx context.Context, js jetstream.JetStream, bucket string, cfg datastore.Config) error {
	others, err := kamajiBuckets(ctx, js)
	if err != nil {
		return err
	}
	others = slices.DeleteFunc(others, func(b string) bool { return b == bucket })
	if len(others) == 0 {
		return nil
	}
	who := fmt.Sprintf("bucket %q", others[0])
	if kv, err := js.KeyValue(ctx, others[0]); err == nil {
		if m, ok := readMarker(ctx, kv); ok {
			who = fmt.Sprintf("tenant %s in bucket %q", m, others[0])
		}
	}
	return status.Errorf(codes.FailedPrecondition,
		"DataStore %q authenticates with plain credentials, so it serves a single tenant, and it already serves %s; delete that tenant, or give the DataStore an account signing key and run the plugin in jwt mode to serve several",
		cfg.Name, who)
}

func kamajiBuckets(ctx context.Context, js jetstream.JetStream) ([]string, error) {
	names := js.StreamNames(ctx)
	var out []string
	for n := range names.Name() {
		if b, ok := strings.CutPrefix(n, "KV_"); ok && strings.HasPrefix(b, bucketPrefix) {
			out = append(out, b)
		}
	}
	if err := names.Err(); err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	return out, nil
}

func writeMarker(ctx context.Context, kv jetstream.KeyValue, t datastore.Tenant) error {
	want := marker{Namespace: t.Namespace, Name: t.Name, UID: t.UID, Schema: t.Schema, Username: t.Username}
	if m, ok := readMarker(ctx, kv); ok && m == want {
		return nil
	}
	b, err := json.Marshal(want)
	if err != nil {
		return err
	}
	if err := putKine(ctx, kv, markerKey, b); err != nil {
		return fmt.Errorf("record the tenant in bucket %q: %w", kv.Bucket(), err)
	}
	return nil
}

func readMarker(ctx context.Context, kv jetstream.KeyValue) (marker, bool) {
	var m marker
	v, ok, err := getKine(ctx, kv, markerKey)
	if err != nil || !ok || json.Unmarshal(v, &m) != nil {
		return m, false
	}
	return m, true
}

// sidecar is the kine container of the tenant: the endpoint names the bucket and a NATS
// context file (server URLs, TLS files, credentials, inbox prefix), which the core mounts
// from a Secret.
func (s *settings) sidecar(bucket string, t datastore.Tenant) (*datastore.KineSidecar, error) {
	ctxFile := KineFilesDir + "/nats/context.json"
	// The path and the bucket name need no escaping in a query ('/' is allowed there, bucket
	// names are letters, digits, '-' and '_'). noEmbed: a kine built with an embedded NATS server
	// would otherwise start one.
	endpoint := "nats://?contextFile=" + ctxFile + "&bucket=" + bucket
	if s.replicas != defaultReplicas {
		endpoint += "&replicas=" + strconv.Itoa(s.replicas)
	}
	if s.revHistory != defaultRevHistory {
		endpoint += "&revHistory=" + strconv.Itoa(s.revHistory)
	}
	endpoint += "&noEmbed"
	nctx := map[string]any{"description": "kamaji tenant " + t.Namespace + "/" + t.Name, "url": joinServers(s.servers)}
	var files []datastore.File
	switch {
	case s.mode == AuthJWT:
		creds, err := s.tenantCredentials(bucket, t.Username)
		if err != nil {
			return nil, err
		}
		nctx["creds"] = KineFilesDir + "/nats/tenant.creds"
		nctx["inbox_prefix"] = inboxPrefix(bucket)
		files = append(files, datastore.File{Path: KineFilesDir + "/nats/tenant.creds", Content: creds, Mode: 0o400, Secret: true})
	case s.user != "":
		nctx["user"], nctx["password"] = s.user, s.password
	case s.password != "":
		nctx["token"] = s.password
	}
	if len(s.cfg.CACert) > 0 {
		nctx["ca"] = KineFilesDir + "/nats/ca.crt"
		files = append(files, datastore.File{Path: KineFilesDir + "/nats/ca.crt", Content: s.cfg.CACert, Mode: 0o444})
	}
	if s.clientCert {
		nctx["cert"], nctx["key"] = KineFilesDir+"/nats/tls.crt", KineFilesDir+"/nats/tls.key"
		files = append(files,
			datastore.File{Path: KineFilesDir + "/nats/tls.crt", Content: s.cfg.ClientCert, Mode: 0o444},
			datastore.File{Path: KineFilesDir + "/nats/tls.key", Content: s.cfg.ClientKey, Mode: 0o400, Secret: true})
	}
	b, err := json.MarshalIndent(nctx, "", "  ")
	if err != nil {
		return nil, err
	}
	// The context holds the password in basic mode: a Secret either way.
	files = append([]datastore.File{{Path: ctxFile, Content: append(b, '\n'), Mode: 0o400, Secret: true}}, files...)
	return &datastore.KineSidecar{
		Image: s.kineImage,
		Args: []string{
			"--endpoint=" + strings.ReplaceAll(endpoint, "$", "$$"),
			"--listen-address=" + KineListen,
			"--metrics-bind-address=0",
		},
		Files:          files,
		ListenEndpoint: "http://" + KineListen,
	}, nil
}

// DeleteTenant deletes the tenant's bucket, with its data, then its registry keys (last, so
// that a retry after a failure still knows the tenant's), and only what the tenant owns: a
// schema recorded for another owner leaves everything as it is. In jwt mode the tenant's user
// cannot be deleted (decentralized users live in no server registry): its permissions name only
// this bucket, whose name is bound to the tenant's schema and username.
func (d *Driver) DeleteTenant(ctx context.Context, cfg datastore.Config, t datastore.Tenant) error {
	s, err := d.settings(cfg)
	if err != nil {
		return err
	}
	bucket, err := tenantBucket(cfg, t)
	if err != nil {
		return err
	}
	js, err := d.admin(s)
	if err != nil {
		return err
	}
	reg, err := openRegistry(ctx, js, s, false)
	if err != nil {
		return err
	}
	want, claims := recordOf(t), claimsOf(t)
	for _, c := range claims {
		if err := reg.read(ctx, c); err != nil {
			return err
		}
	}
	schema, user := claims[0], claims[1]
	switch {
	case schema.rec != nil && !schema.rec.Owner.Same(want.Owner):
		return nil // the bucket of this schema and username, if any, is the owner's
	case schema.rec == nil:
		var owned *sdk.OwnedError
		if err := adoptable(ctx, js, bucket, t); errors.As(err, &owned) {
			return nil
		} else if err != nil {
			return err
		}
	}
	err = js.DeleteKeyValue(ctx, bucket)
	if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("delete bucket %q: %w", bucket, err)
	}
	// A key recording this owner with another pairing belongs to another of its buckets.
	for _, c := range []*claim{user, schema} {
		if c.exact(want) {
			if err := reg.release(ctx, c); err != nil {
				return err
			}
		}
	}
	return nil
}
