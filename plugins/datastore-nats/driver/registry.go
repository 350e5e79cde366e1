package driver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhcp/kamaji/sdk"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// registryBucket is the owner registry: one key per schema and one per username, each naming
// the TenantControlPlane that holds it. Its '-' keeps it out of the tenant bucket namespace
// (kamaji_..., see bucketName), and no tenant permission names its stream or subjects.
const registryBucket = "kamaji-owners"

// ownerRecord is the value of both registry keys of a tenant.
type ownerRecord struct {
	datastore.Owner
	Schema   string `json:"schema"`
	Username string `json:"username"`
}

func recordOf(t datastore.Tenant) ownerRecord {
	return ownerRecord{Owner: t.Owner(), Schema: t.Schema, Username: t.Username}
}

// Keys hash the names: schemas and usernames may hold any character, KV keys cannot.
func schemaKey(schema string) string { return "schema." + nameHash(schema) }
func userKey(username string) string { return "user." + nameHash(username) }

func nameHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

type registry struct {
	js jetstream.JetStream
	kv jetstream.KeyValue
}

func registryConfig(s *settings) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: registryBucket, Description: "kamaji: owners of tenant schemas and users", History: 1, Replicas: s.replicas}
}

// openRegistry returns the registry, creating it when create is set; nil when it does not
// exist and create is not set (nothing is recorded then).
func openRegistry(ctx context.Context, js jetstream.JetStream, s *settings, create bool) (*registry, error) {
	kv, err := js.KeyValue(ctx, registryBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) && create {
		kv, err = js.CreateKeyValue(ctx, registryConfig(s))
		if errors.Is(err, jetstream.ErrBucketExists) {
			// Made meanwhile, or with other replicas by a DataStore sharing the account.
			kv, err = js.KeyValue(ctx, registryBucket)
		}
	}
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound) && !create:
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("owner registry %q: %w", registryBucket, err)
	}
	return &registry{js: js, kv: kv}, nil
}

// claim is one registry key of a tenant; rev is the revision of its record once it is known to
// be the tenant's, taken says this call created it.
type claim struct {
	key, field, what string
	rev              uint64
	taken            bool
	rec              *ownerRecord // what is recorded, nil when nothing is
}

func claimsOf(t datastore.Tenant) []*claim {
	return []*claim{
		{key: schemaKey(t.Schema), field: "tenant.schema", what: fmt.Sprintf("schema %q", t.Schema)},
		{key: userKey(t.Username), field: "tenant.username", what: fmt.Sprintf("username %q", t.Username)},
	}
}

// read loads what is recorded under c.key.
func (r *registry) read(ctx context.Context, c *claim) error {
	c.rec, c.rev = nil, 0
	if r == nil {
		return nil
	}
	e, err := r.kv.Get(ctx, c.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("owner registry %q, key %s: %w", registryBucket, c.key, err)
	}
	var rec ownerRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		// Fail closed: an unreadable record could be anyone's.
		return status.Errorf(codes.FailedPrecondition, "owner registry %q, key %s (%s): unreadable record: %v", registryBucket, c.key, c.what, err)
	}
	c.rec, c.rev = &rec, e.Revision()
	return nil
}

// check refuses a record of another owner, or of the same owner paired with another schema or
// username (its other half would be left behind).
func (c *claim) check(want ownerRecord) error {
	switch {
	case c.rec == nil:
		return nil
	case !c.rec.Owner.Same(want.Owner):
		return sdk.Owned(c.field, "%s is owned by %s", c.what, c.rec.Owner)
	case c.rec.Schema != want.Schema || c.rec.Username != want.Username:
		return status.Errorf(codes.FailedPrecondition, "%s: %s was provisioned for %s with schema %q and username %q; a tenant's schema and username cannot change",
			c.field, c.what, c.rec.Owner, c.rec.Schema, c.rec.Username)
	}
	return nil
}

// exact reports whether c records exactly want.
func (c *claim) exact(want ownerRecord) bool {
	return c.rec != nil && c.check(want) == nil
}

// take records want under c.key unless it is already. KV Create is atomic: of two owners
// racing for a key one creates it, the other reads the winner's record and is refused.
func (r *registry) take(ctx context.Context, c *claim, want ownerRecord) error {
	b, err := json.Marshal(want)
	if err != nil {
		return err
	}
	for range 3 {
		if c.rec != nil {
			return c.check(want)
		}
		rev, err := r.kv.Create(ctx, c.key, b)
		if err == nil {
			c.rec, c.rev, c.taken = &want, rev, true
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("owner registry %q, key %s: %w", registryBucket, c.key, err)
		}
		if err := r.read(ctx, c); err != nil {
			return err
		}
	}
	return status.Errorf(codes.Aborted, "owner registry %q, key %s: changing under concurrent calls, retry", registryBucket, c.key)
}

// release removes c's record at its revision, and no later one: the messages of its subject up
// to that revision are purged, so no delete marker is left, and a record another owner made
// since survives.
func (r *registry) release(ctx context.Context, c *claim) error {
	if r == nil || c.rec == nil {
		return nil
	}
	st, err := r.js.Stream(ctx, "KV_"+registryBucket)
	if err != nil {
		return fmt.Errorf("owner registry %q: %w", registryBucket, err)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject("$KV."+registryBucket+"."+c.key), jetstream.WithPurgeSequence(c.rev+1)); err != nil {
		return fmt.Errorf("owner registry %q, remove key %s: %w", registryBucket, c.key, err)
	}
	c.rec, c.rev, c.taken = nil, 0, false
	return nil
}

// undo releases the claims this call took, so that a refused call changes nothing.
func (r *registry) undo(ctx context.Context, claims []*claim) {
	// Even when the call's context is done: a claim left behind would lock its name.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), validateTimeout)
	defer cancel()
	for _, c := range claims {
		if c.taken {
			_ = r.release(ctx, c)
		}
	}
}
